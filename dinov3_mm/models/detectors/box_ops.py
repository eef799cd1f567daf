"""Box conversions and (generalised) IoU for DETR-style detectors.

Boxes are ``(..., 4)`` tensors, either ``(cx, cy, w, h)`` or
``(x1, y1, x2, y2)``; the functions are differentiable and export to ONNX.
"""
from typing import Tuple

import torch
from torch import Tensor


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(cx, cy, w, h)`` to ``(x1, y1, x2, y2)``."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(x1, y1, x2, y2)`` to ``(cx, cy, w, h)``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def box_area(boxes: Tensor) -> Tensor:
    """Area of ``(x1, y1, x2, y2)`` boxes (zero for inverted ones)."""
    return ((boxes[..., 2] - boxes[..., 0]).clamp(min=0) *
            (boxes[..., 3] - boxes[..., 1]).clamp(min=0))


def pairwise_iou(boxes1: Tensor, boxes2: Tensor) -> Tuple[Tensor, Tensor]:
    """IoU and union of every pair of two sets of xyxy boxes.

    Args:
        boxes1 (Tensor): ``(N, 4)``.
        boxes2 (Tensor): ``(M, 4)``.

    Returns:
        tuple[Tensor, Tensor]: IoU ``(N, M)`` and union area ``(N, M)``.
    """
    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter / union.clamp(min=1e-7), union


def pairwise_giou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Generalised IoU (Rezatofighi et al. 2019) of every pair, ``(N, M)``."""
    iou, union = pairwise_iou(boxes1, boxes2)
    top_left = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    hull = wh[..., 0] * wh[..., 1]
    return iou - (hull - union) / hull.clamp(min=1e-7)


def aligned_giou(boxes1: Tensor, boxes2: Tensor) -> Tuple[Tensor, Tensor]:
    """IoU and generalised IoU of matching rows of two ``(N, 4)`` sets."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    wh = (torch.min(boxes1[:, 2:], boxes2[:, 2:]) -
          torch.max(boxes1[:, :2], boxes2[:, :2])).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = (area1 + area2 - inter).clamp(min=1e-7)
    iou = inter / union
    hull_wh = (torch.max(boxes1[:, 2:], boxes2[:, 2:]) -
               torch.min(boxes1[:, :2], boxes2[:, :2])).clamp(min=0)
    hull = (hull_wh[:, 0] * hull_wh[:, 1]).clamp(min=1e-7)
    return iou, iou - (hull - union) / hull


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """``log(x / (1 - x))`` with ``x`` clamped away from 0 and 1."""
    x = x.clamp(min=eps, max=1 - eps)
    return torch.log(x / (1 - x))
