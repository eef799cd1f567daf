"""Semantic segmentation metric functions: per-class pixel counts.

:func:`intersect_and_union` gives the counts from which
:class:`~dinov3_mm.evaluation.metrics.SegMetric` computes IoU, Dice and
pixel accuracy (pixels equal to ``ignore_index`` in the label are left out).
"""
from typing import Tuple

import torch
from torch import Tensor


def intersect_and_union(pred: Tensor, label: Tensor, num_classes: int,
                        ignore_index: int = 255
                        ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-class ``(intersection, union, pred_area, label_area)`` counts.

    Args:
        pred (Tensor): Predicted class per pixel; values outside
            ``[0, num_classes)`` count for no class.
        label (Tensor): True class per pixel, same number of pixels.
        num_classes (int): Number of classes ``C``.
        ignore_index (int): Label value left out. Defaults to 255.

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]: Four ``(C,)`` int64 counts:
        pixels predicted and labelled ``c`` (intersection), predicted or
        labelled ``c`` (union), predicted ``c`` and labelled ``c``.

    Raises:
        ValueError: The pixel counts differ, or a label other than
            ``ignore_index`` lies outside ``[0, num_classes)``.
    """
    pred, label = pred.reshape(-1).long(), label.reshape(-1).long()
    if pred.shape != label.shape:
        raise ValueError(f'prediction has {pred.numel()} pixels, label '
                         f'{label.numel()}.')
    keep = label != ignore_index
    pred, label = pred[keep], label[keep]
    bad = label[(label < 0) | (label >= num_classes)]
    if bad.numel():
        raise ValueError(
            f'SegMetric: label values {sorted(set(bad.tolist()))[:10]} lie '
            f'outside [0, {num_classes - 1}] and are not ignore_index='
            f'{ignore_index}.')
    valid_pred = (pred >= 0) & (pred < num_classes)
    inter = torch.bincount(pred[(pred == label) & valid_pred],
                           minlength=num_classes)[:num_classes]
    area_pred = torch.bincount(pred[valid_pred],
                               minlength=num_classes)[:num_classes]
    area_label = torch.bincount(label, minlength=num_classes)[:num_classes]
    return inter, area_pred + area_label - inter, area_pred, area_label
