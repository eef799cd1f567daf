"""The exported outputs of a DETR-style detector: top-k boxes, scores,
labels (and mask logits), with no data-dependent control flow.

The graph keeps a fixed number of detections per image, ``k =
min(test_cfg['num_select'], num_queries * num_classes)``: the top-k (query,
class) pairs of the sigmoid scores, exactly as ``DINOv3DETR.predict`` picks
them. Thresholding and the mapping to original-image coordinates happen
outside the graph (the Triton postprocessing,
:mod:`dinov3_mm.utils.det_ops`).
"""
from typing import Tuple

import torch
from torch import Tensor, nn

from dinov3_mm.apis.det_inference import is_detector
from dinov3_mm.models.detectors.box_ops import cxcywh_to_xyxy

__all__ = ['detection_outputs', 'is_detector', 'num_detections']


def num_detections(model: nn.Module) -> int:
    """``k``: detections per image in the exported graph."""
    return int(min(model.test_cfg.get('num_select', 100),
                   model.num_queries * model.num_classes))


def detection_outputs(model: nn.Module, inputs: Tensor) -> Tuple[Tensor, ...]:
    """Top-k detections of normalised ``(B, 3, H, W)`` inputs.

    Args:
        model (nn.Module): A :class:`DINOv3DETR` in eval mode.
        inputs (Tensor): Normalised images at the export size.

    Returns:
        tuple: ``boxes`` float ``(B, k, 4)`` xyxy in network-input pixels,
        ``scores`` float ``(B, k)`` (sigmoid, best first), ``labels`` int64
        ``(B, k)`` and, for mask models, ``masks`` float ``(B, k, H/s,
        W/s)``: mask **logits** on the stride-``s`` grid of the mask level
        (``s = 4`` in the shipped configs) covering the whole input; a pixel
        belongs to the object where the logit exceeds
        ``test_cfg['mask_threshold']`` (default 0, probability 0.5).
    """
    out = model.forward_heads(inputs)
    num_queries, num_classes = model.num_queries, model.num_classes
    logits = out['logits'][-1][:, :num_queries].float()
    boxes = out['boxes'][-1][:, :num_queries].float()
    k = num_detections(model)
    scores, index = logits.sigmoid().flatten(1).topk(k, dim=1)
    query = torch.div(index, num_classes, rounding_mode='floor')
    labels = index - query * num_classes
    height, width = int(inputs.shape[-2]), int(inputs.shape[-1])
    picked = torch.gather(boxes, 1, query[..., None].expand(-1, -1, 4))
    xyxy = cxcywh_to_xyxy(picked) * picked.new_tensor(
        [width, height, width, height])
    if getattr(model, 'mask_head', None) is None:
        return xyxy, scores, labels
    queries = out['queries'][:, :num_queries]
    picked_queries = torch.gather(
        queries, 1, query[..., None].expand(-1, -1, queries.shape[-1]))
    masks = model.mask_head.logits(picked_queries, out['pixels']).float()
    return xyxy, scores, labels, masks
