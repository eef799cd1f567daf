"""Hungarian matching of predicted boxes to ground truth (DETR)."""
from typing import Optional, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .box_ops import cxcywh_to_xyxy, pairwise_giou


class HungarianMatcher:
    """One-to-one assignment minimising a weighted matching cost.

    ``cost = w_cls * focal_cost + w_l1 * L1(cxcywh) - w_giou * GIoU``, the
    classification cost being the focal-loss difference of Deformable DETR
    (``alpha``, ``gamma``) for the ground-truth class.

    Args:
        class_weight (float): Defaults to 2.
        l1_weight (float): Defaults to 5.
        giou_weight (float): Defaults to 2.
        alpha (float): Focal alpha. Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.
    """

    def __init__(self,
                 class_weight: float = 2.0,
                 l1_weight: float = 5.0,
                 giou_weight: float = 2.0,
                 alpha: float = 0.25,
                 gamma: float = 2.0):
        self.class_weight = class_weight
        self.l1_weight = l1_weight
        self.giou_weight = giou_weight
        self.alpha = alpha
        self.gamma = gamma

    @torch.no_grad()
    def cost(self, logits: Tensor, boxes: Tensor, gt_labels: Tensor,
             gt_boxes: Tensor) -> Tensor:
        """Matching cost ``(Q, N)`` of one image.

        Args:
            logits (Tensor): ``(Q, C)`` class logits.
            boxes (Tensor): ``(Q, 4)`` normalised cxcywh boxes.
            gt_labels (Tensor): ``(N,)`` class indices.
            gt_boxes (Tensor): ``(N, 4)`` normalised cxcywh boxes.
        """
        prob = logits.float().sigmoid()[:, gt_labels]
        neg = (1 - self.alpha) * prob**self.gamma * (-(1 - prob + 1e-8).log())
        pos = self.alpha * (1 - prob)**self.gamma * (-(prob + 1e-8).log())
        boxes = boxes.float()
        cost = self.class_weight * (pos - neg)
        cost = cost + self.l1_weight * torch.cdist(boxes, gt_boxes, p=1)
        cost = cost - self.giou_weight * pairwise_giou(
            cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(gt_boxes))
        return cost

    def __call__(self,
                 logits: Tensor,
                 boxes: Tensor,
                 gt_labels: Tensor,
                 gt_boxes: Tensor,
                 extra_cost: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Tensor]:
        """Matched ``(query_indices, gt_indices)`` of one image.

        Args:
            extra_cost (Tensor, optional): ``(Q, N)`` added to the cost
                (e.g. a mask cost).
        """
        if gt_labels.numel() == 0:
            empty = torch.zeros(0, dtype=torch.long, device=logits.device)
            return empty, empty
        cost = self.cost(logits, boxes, gt_labels, gt_boxes)
        if extra_cost is not None:
            cost = cost + extra_cost
        cost = torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        device = logits.device
        return (torch.as_tensor(rows, dtype=torch.long, device=device),
                torch.as_tensor(cols, dtype=torch.long, device=device))
