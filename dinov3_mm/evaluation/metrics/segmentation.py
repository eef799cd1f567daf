"""Semantic segmentation metric class: IoU, Dice and pixel accuracy.

Per class ``c`` over the whole evaluation set (pixels equal to
``ignore_index`` in the ground truth are left out):

* ``IoU_c = TP / (TP + FP + FN)``, ``Dice_c = 2 TP / (2 TP + FP + FN)``;
* ``mIoU`` / ``mDice`` average the classes whose value is defined (a class
  absent from both the labels and the predictions gives NaN and is skipped,
  or counts as ``nan_to_num`` when set);
* ``aAcc`` = correctly labelled pixels / labelled pixels.

Every reported value is in **percent**.
"""
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from torch import Tensor

from dinov3_mm.registry import METRICS
from ..functional.segmentation import intersect_and_union
from .table import format_table

IOU_METRICS = ('mIoU', 'mDice')


def _data(value) -> Tensor:
    """The ``(H, W)`` int64 CPU tensor of a PixelData, dict or array."""
    if isinstance(value, dict) or hasattr(value, 'keys'):
        value = value['data']
    elif hasattr(value, 'data'):
        value = value.data
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    value = torch.as_tensor(value).detach().cpu().long()
    return value.reshape(value.shape[-2:]) if value.ndim >= 2 else value


@METRICS.register_module()
class SegMetric(BaseMetric):
    """mIoU / mDice / aAcc of semantic segmentation, in percent.

    Reads ``pred_sem_seg['data']`` and ``gt_sem_seg['data']`` of each data
    sample (dicts from ``SegDataSample.to_dict()`` or the samples
    themselves). Logs a per-class IoU/Dice table and keeps its rows in
    :attr:`last_per_class`.

    Args:
        iou_metrics (sequence[str]): Any of ``'mIoU'``, ``'mDice'``.
        ignore_index (int): Label value left out. Defaults to 255.
        classes (sequence[str], optional): Class names; defaults to
            ``dataset_meta['classes']``.
        nan_to_num (float, optional): Value of undefined per-class results
            (class absent from labels and predictions); None skips them in
            the means.
        num_classes (int, optional): Defaults to the number of classes.
        collect_device (str): Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix.
    """

    default_prefix: Optional[str] = ''

    def __init__(self,
                 iou_metrics: Sequence[str] = ('mIoU', 'mDice'),
                 ignore_index: int = 255,
                 classes: Optional[Sequence[str]] = None,
                 nan_to_num: Optional[float] = None,
                 num_classes: Optional[int] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(iou_metrics, str):
            iou_metrics = (iou_metrics, )
        for name in iou_metrics:
            if name not in IOU_METRICS:
                raise ValueError(f'SegMetric: iou_metrics entry {name!r}; '
                                 f'choose from {IOU_METRICS}.')
        self.iou_metrics = tuple(iou_metrics)
        self.ignore_index = ignore_index
        self.classes = list(classes) if classes is not None else None
        self.nan_to_num = nan_to_num
        self.num_classes = num_classes
        self.last_per_class: Optional[List[dict]] = None

    def _class_names(self) -> List[str]:
        names = self.classes
        if names is None and self.dataset_meta:
            names = self.dataset_meta.get('classes')
        if names is None and self.num_classes is None:
            raise ValueError('SegMetric: give `classes` or `num_classes`, or '
                             'evaluate with a dataset whose metainfo has '
                             'classes.')
        if names is None:
            names = [f'class_{i}' for i in range(self.num_classes)]
        return [str(n) for n in names]

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Accumulate per-class counts of a batch."""
        num_classes = self.num_classes or len(self._class_names())
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            if 'pred_sem_seg' not in sample:
                raise KeyError('SegMetric: a prediction has no '
                               '`pred_sem_seg`; make the segmentor fill it.')
            if 'gt_sem_seg' not in sample:
                raise KeyError('SegMetric: a data sample has no `gt_sem_seg`;'
                               ' the validation pipeline must pack masks.')
            pred = _data(sample['pred_sem_seg'])
            label = _data(sample['gt_sem_seg'])
            if pred.shape != label.shape:
                raise ValueError(
                    f"SegMetric: {sample.get('img_path', 'a sample')}: "
                    f'prediction {tuple(pred.shape)} vs mask '
                    f'{tuple(label.shape)}. Predictions come at the '
                    'original image size; load masks after resizing in the '
                    'test pipeline (LoadSegAnnotation after '
                    'ResizeKeepRatioPad) so they keep that size.')
            self.results.append(
                tuple(t.clone() for t in intersect_and_union(
                    pred, label, num_classes, self.ignore_index)))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """Sum the counts and return ``aAcc``, ``mIoU``, ``mDice``."""
        if not results:
            print_log('SegMetric: no results to evaluate.', logger='current',
                      level=logging.WARNING)
            return {}
        inter, union, area_pred, area_label = (
            torch.stack(x).sum(0).double() for x in zip(*results))
        num_classes = inter.numel()
        names = self._class_names()
        if len(names) != num_classes:
            names = [f'class_{i}' for i in range(num_classes)]
        iou = inter / union  # 0/0 -> nan
        dice = 2 * inter / (area_pred + area_label)
        if self.nan_to_num is not None:
            iou = torch.nan_to_num(iou, nan=self.nan_to_num)
            dice = torch.nan_to_num(dice, nan=self.nan_to_num)
        total = area_label.sum()
        metrics = {'aAcc': float(100 * inter.sum() / total)
                   if total > 0 else float('nan')}

        def mean(x: Tensor) -> float:
            x = x[~torch.isnan(x)]
            return float(100 * x.mean()) if x.numel() else float('nan')

        if 'mIoU' in self.iou_metrics:
            metrics['mIoU'] = mean(iou)
        if 'mDice' in self.iou_metrics:
            metrics['mDice'] = mean(dice)
        rows = []
        for c in range(num_classes):
            row = dict(cls=names[c])
            if 'mIoU' in self.iou_metrics:
                row['IoU'] = float(100 * iou[c])
            if 'mDice' in self.iou_metrics:
                row['Dice'] = float(100 * dice[c])
            row['support'] = int(area_label[c])
            rows.append(row)
        self.last_per_class = rows
        print_log(
            'Per-class results, percent:\n' + format_table(
                list(rows[0].keys()), [list(r.values()) for r in rows]),
            logger='current')
        return metrics
