"""Losses of DETR-style detectors: IoU-aware classification, boxes, masks.

Every loss is summed over the matched objects (or all queries for the
classification loss) and divided by ``num_boxes``, the number of ground-truth
objects in the batch (at least 1), as in DETR.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

from .box_ops import aligned_giou, cxcywh_to_xyxy


def iou_aware_bce(logits: Tensor, query_index: Tensor, gt_labels: Tensor,
                  ious: Tensor, num_boxes: float, alpha: float = 0.25,
                  gamma: float = 2.0) -> Tensor:
    """IoU-aware binary cross-entropy (the IA-BCE of LW-DETR).

    A matched query's target for its class is ``t = p ** alpha * iou **
    (1 - alpha)`` (``p`` its detached probability, ``iou`` with its matched
    box): confident, well-localised queries are pushed up, others less.
    Every other (query, class) pair is a negative weighted by ``p ** gamma``
    (focal down-weighting of easy negatives).

    Args:
        logits (Tensor): ``(Q, C)`` class logits of all queries.
        query_index (Tensor): ``(M,)`` matched queries.
        gt_labels (Tensor): ``(M,)`` their classes.
        ious (Tensor): ``(M,)`` IoU with their boxes (detached inside).
        num_boxes (float): Normaliser.
        alpha (float): Defaults to 0.25.
        gamma (float): Defaults to 2.

    Returns:
        Tensor: Scalar loss.
    """
    logits = logits.float()
    prob = logits.sigmoid().detach()
    pos_weight = torch.zeros_like(logits)
    neg_weight = prob**gamma
    target = (prob[query_index, gt_labels]**alpha *
              ious.detach().float().clamp(min=0)**(1 - alpha)).clamp(min=0.01)
    pos_weight[query_index, gt_labels] = target
    neg_weight[query_index, gt_labels] = 1 - target
    loss = (-pos_weight * F.logsigmoid(logits) -
            neg_weight * F.logsigmoid(-logits))
    return loss.sum() / num_boxes


def box_losses(boxes: Tensor, gt_boxes: Tensor, num_boxes: float):
    """L1 (on normalised cxcywh) and GIoU losses of matched boxes.

    Args:
        boxes (Tensor): ``(M, 4)`` predicted normalised cxcywh.
        gt_boxes (Tensor): ``(M, 4)`` their targets.
        num_boxes (float): Normaliser.

    Returns:
        tuple[Tensor, Tensor, Tensor]: L1 loss, GIoU loss and the ``(M,)``
        IoUs (for the classification target).
    """
    boxes = boxes.float()
    l1 = F.l1_loss(boxes, gt_boxes, reduction='sum') / num_boxes
    iou, giou = aligned_giou(cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(gt_boxes))
    return l1, (1 - giou).sum() / num_boxes, iou


def sample_points(mask_logits: Tensor, num_points: int,
                  oversample_ratio: float = 3.0,
                  importance_ratio: float = 0.75) -> Tensor:
    """Points where a mask is uncertain, plus uniform ones (PointRend).

    ``oversample_ratio * num_points`` uniform candidates are scored by
    ``-|logit|``; the ``importance_ratio`` most uncertain are kept and the
    rest of the ``num_points`` drawn uniformly.

    Args:
        mask_logits (Tensor): ``(M, 1, h, w)`` (detached inside).
        num_points (int): Points per mask.

    Returns:
        Tensor: ``(M, num_points, 2)`` normalised ``(x, y)`` in ``[0, 1]``.
    """
    num = mask_logits.shape[0]
    device = mask_logits.device
    num_candidates = int(num_points * oversample_ratio)
    candidates = torch.rand(num, num_candidates, 2, device=device)
    logits = point_sample(mask_logits.detach(), candidates)
    num_uncertain = int(importance_ratio * num_points)
    top = (-logits.abs()).topk(num_uncertain, dim=1).indices
    uncertain = torch.gather(candidates, 1, top[..., None].expand(-1, -1, 2))
    uniform = torch.rand(num, num_points - num_uncertain, 2, device=device)
    return torch.cat([uncertain, uniform], dim=1)


def point_sample(maps: Tensor, points: Tensor) -> Tensor:
    """Bilinear values of ``(M, 1, h, w)`` maps at ``(M, P, 2)`` points.

    Returns:
        Tensor: ``(M, P)``.
    """
    grid = points[:, :, None, :] * 2 - 1
    return F.grid_sample(maps, grid.to(maps.dtype), mode='bilinear',
                         align_corners=False)[:, 0, :, 0]


def mask_losses(mask_logits: Tensor, gt_masks: Tensor, num_boxes: float,
                num_points: int = 1024):
    """Point-sampled sigmoid cross-entropy and Dice of matched masks.

    Only ``num_points`` points per mask are compared, so memory does not
    grow with the mask resolution (Mask2Former).

    Args:
        mask_logits (Tensor): ``(M, h, w)`` predicted logits of the matched
            queries (low resolution), covering the same canvas as
            ``gt_masks``.
        gt_masks (Tensor): ``(M, H, W)`` float targets in ``{0, 1}``.
        num_boxes (float): Normaliser.
        num_points (int): Points per mask. Defaults to 1024.

    Returns:
        tuple[Tensor, Tensor]: Cross-entropy and Dice losses.
    """
    if mask_logits.shape[0] == 0:
        zero = mask_logits.sum() * 0
        return zero, zero
    mask_logits = mask_logits[:, None].float()
    points = sample_points(mask_logits, num_points)
    logits = point_sample(mask_logits, points)
    with torch.no_grad():
        targets = point_sample(gt_masks[:, None].float(), points)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    prob = logits.sigmoid()
    dice = 1 - (2 * (prob * targets).sum(-1) + 1) / (
        prob.sum(-1) + targets.sum(-1) + 1)
    return ce.mean(-1).sum() / num_boxes, dice.sum() / num_boxes
