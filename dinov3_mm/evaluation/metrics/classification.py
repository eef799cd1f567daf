"""Classification metric class: :class:`ClsMetric`.

The values come from the functions of
:mod:`dinov3_mm.evaluation.functional.classification` (definitions there);
:class:`ClsMetric` reports every value in **percent** (``0-100``), AUROC and
mAP included, as mmpretrain does for accuracy and mAP.
"""
import csv
import logging
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from torch import Tensor

from dinov3_mm.registry import METRICS
from ..functional.classification import (AVERAGES, as_tensor, auroc,
                                         average_per_class, average_precision,
                                         check_class_indices, confusion_matrix,
                                         precision_recall_f1, topk_accuracy)
from .table import format_table


@METRICS.register_module()
class ClsMetric(BaseMetric):
    """Single- and multi-label classification metrics in one pass.

    Every reported value is a **percentage in [0, 100]** (AUROC and mAP
    included), under these names (``prefix/`` prepended when set):

    * single-label: ``accuracy/top{k}`` for each ``k`` in ``topk`` with
      ``k == 1`` or ``k < num_classes``; ``precision/{avg}``,
      ``recall/{avg}``, ``f1/{avg}`` for each ``avg`` in ``average``
      (defaults ``macro`` and ``weighted``); ``auroc/macro`` (one-vs-rest).
    * multi-label: ``mAP``; ``precision/{avg}``, ``recall/{avg}``,
      ``f1/{avg}`` of the predictions ``score >= thr`` (defaults ``macro``
      and ``micro``); ``auroc/macro``.

    ``auroc/macro`` is left out when no class has both positives and
    negatives. Monitoring ``accuracy/*``, ``precision/*`` or ``mAP`` lets
    mmengine's ``CheckpointHook(save_best=...)`` and ``EarlyStoppingHook``
    infer ``rule='greater'``; for ``recall``, ``f1`` or ``auroc`` pass
    ``rule='greater'``.

    After each evaluation the gathered predictions stay on the instance as
    :attr:`last_results` (for plots, e.g. :class:`~dinov3_mm.engine.hooks.
    ClsPlotHook`), with the per-class table in :attr:`last_per_class`.

    Args:
        topk (int | Sequence[int]): Top-k accuracies. Defaults to ``(1, 5)``.
        average (Sequence[str], optional): Averages of precision / recall /
            F1 among ``'macro'``, ``'weighted'``, ``'micro'``. Defaults to
            ``('macro', 'weighted')`` single-label, ``('macro', 'micro')``
            multi-label.
        auroc (bool): Compute AUROC. Defaults to True.
        multi_label (bool): Samples may have several true classes
            (``gt_label`` holds their indices, or ``gt_score`` a multi-hot
            vector). Defaults to False.
        thr (float): Score threshold of multi-label predictions.
            Defaults to 0.5.
        classes (Sequence[str], optional): Class names; defaults to
            ``dataset_meta['classes']``, else ``class_{i}``.
        per_class (bool): Log a per-class table (precision, recall, f1,
            support, auroc; plus AP multi-label). Defaults to True.
        save_dir (str, optional): Also write ``per_class.csv`` and
            ``confusion_matrix.csv`` (single-label) there.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names.
    """
    # names are already namespaced (accuracy/top1 ...); '' avoids mmengine's
    # missing-prefix warning and adds nothing
    default_prefix: Optional[str] = ''

    def __init__(self,
                 topk: Union[int, Sequence[int]] = (1, 5),
                 average: Optional[Sequence[str]] = None,
                 auroc: bool = True,
                 multi_label: bool = False,
                 thr: float = 0.5,
                 classes: Optional[Sequence[str]] = None,
                 per_class: bool = True,
                 save_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        if any(int(k) < 1 for k in self.topk):
            raise ValueError(f'topk={topk}: every k must be >= 1.')
        if average is None:
            average = ('macro', 'micro') if multi_label else ('macro',
                                                              'weighted')
        elif isinstance(average, str):
            average = (average, )
        for avg in average:
            if avg not in AVERAGES:
                raise ValueError(f'ClsMetric average={avg!r}; choose from '
                                 f'{AVERAGES}.')
        self.average = tuple(average)
        self.auroc = auroc
        self.multi_label = multi_label
        self.thr = thr
        self.classes = list(classes) if classes is not None else None
        self.per_class = per_class
        self.save_dir = save_dir
        self.last_results: Optional[dict] = None
        self.last_per_class: Optional[List[dict]] = None

    # ----------------------------------------------------------- collecting
    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the scores and labels of a batch (dicts from ``to_dict()``)."""
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            result = dict()
            if 'pred_score' in sample:
                result['pred_score'] = as_tensor(
                    sample['pred_score'], torch.float32).reshape(-1).clone()
            elif 'pred_label' in sample:
                result['pred_label'] = as_tensor(
                    sample['pred_label'], torch.long).reshape(-1).clone()
            else:
                raise KeyError('ClsMetric: a prediction has neither '
                               '`pred_score` nor `pred_label`; make the '
                               "model's predict() fill one of them.")
            if 'gt_label' in sample:
                result['gt_label'] = as_tensor(
                    sample['gt_label'], torch.long).reshape(-1).clone()
            elif 'gt_score' in sample:
                result['gt_score'] = as_tensor(
                    sample['gt_score'], torch.float32).reshape(-1).clone()
            else:
                raise KeyError('ClsMetric: a data sample has neither '
                               '`gt_label` nor `gt_score`; the validation '
                               'pipeline must pack the labels.')
            self.results.append(result)

    def _class_names(self, num_classes: int) -> List[str]:
        names = self.classes
        if names is None and self.dataset_meta:
            names = self.dataset_meta.get('classes')
        if names is None or len(names) != num_classes:
            if names is not None:
                print_log(
                    f'ClsMetric: {len(names)} class names for {num_classes} '
                    'score columns; using class_<i>.', logger='current',
                    level=logging.WARNING)
            names = [f'class_{i}' for i in range(num_classes)]
        return [str(n) for n in names]

    def _num_classes(self, results: List[dict]) -> int:
        if 'pred_score' in results[0]:
            return int(results[0]['pred_score'].numel())
        if 'gt_score' in results[0]:
            return int(results[0]['gt_score'].numel())
        names = self.classes or (self.dataset_meta or {}).get('classes')
        if names:
            return len(names)
        return int(max(
            max(r['pred_label'].max().item() if r['pred_label'].numel()
                else 0, r['gt_label'].max().item() if 'gt_label' in r
                and r['gt_label'].numel() else 0) for r in results)) + 1

    def _gather(self, results: List[dict]) -> Tuple[Optional[Tensor], Tensor,
                                                    Tensor, int]:
        """Stack to ``(scores or None, predictions, targets, C)``."""
        num_classes = self._num_classes(results)
        scores = None
        if all('pred_score' in r for r in results):
            scores = torch.stack([r['pred_score'] for r in results]).double()
        if self.multi_label:
            targets = torch.zeros(len(results), num_classes, dtype=torch.bool)
            for i, r in enumerate(results):
                if 'gt_label' in r:
                    check_class_indices(r['gt_label'], num_classes,
                                        'gt_label')
                    targets[i, r['gt_label']] = True
                else:
                    targets[i] = r['gt_score'] >= 0.5
            if scores is not None:
                preds = scores >= self.thr
            else:
                preds = torch.zeros_like(targets)
                for i, r in enumerate(results):
                    preds[i, r['pred_label']] = True
            return scores, preds, targets, num_classes
        targets = torch.stack([
            r['gt_label'][0] if 'gt_label' in r else r['gt_score'].argmax()
            for r in results
        ])
        if scores is not None:
            preds = scores.argmax(dim=1)
        else:
            preds = torch.stack([r['pred_label'][0] for r in results])
        return scores, preds, targets, num_classes

    # ----------------------------------------------------------- computing
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Turn the gathered results into the flat, percent-valued dict."""
        if not results:
            print_log('ClsMetric: no results to evaluate.', logger='current',
                      level=logging.WARNING)
            return {}
        scores, preds, targets, num_classes = self._gather(results)
        classes = self._class_names(num_classes)
        metrics: Dict[str, float] = {}
        if not self.multi_label:
            for k in self.topk:
                k = int(k)
                if k == 1:
                    acc = (preds == targets).double().mean().item()
                elif scores is not None and k < num_classes:
                    acc = topk_accuracy(scores, targets, k)
                else:
                    continue
                metrics[f'accuracy/top{k}'] = 100 * acc
        else:
            if scores is not None:
                metrics['mAP'] = 100 * average_precision(
                    scores, targets, 'macro', classes)
        for avg in self.average:
            p, r, f, _ = precision_recall_f1(preds, targets, num_classes, avg)
            metrics[f'precision/{avg}'] = 100 * p
            metrics[f'recall/{avg}'] = 100 * r
            metrics[f'f1/{avg}'] = 100 * f
        per_auroc = None
        if self.auroc and scores is not None:
            per_auroc = auroc(scores, targets, average=None)
            macro = average_per_class(per_auroc, targets.sum(0), 'macro',
                                      'AUROC', classes)
            if not math.isnan(macro):
                metrics['auroc/macro'] = 100 * macro
        metrics = {k: float(v) for k, v in metrics.items()}

        self.last_results = dict(
            scores=scores.float() if scores is not None else None,
            labels=targets,
            preds=preds,
            multi_label=self.multi_label,
            num_classes=num_classes,
            classes=classes)
        self._per_class_table(scores, preds, targets, num_classes, classes,
                              per_auroc)
        return metrics

    def _per_class_table(self, scores: Optional[Tensor], preds: Tensor,
                         targets: Tensor, num_classes: int,
                         classes: List[str],
                         per_auroc: Optional[Tensor]) -> None:
        p, r, f, support = precision_recall_f1(preds, targets, num_classes,
                                               None)
        per_ap = None
        if self.multi_label and scores is not None:
            per_ap = average_precision(scores, targets, None)
        rows = []
        for c in range(num_classes):
            row = dict(
                cls=classes[c],
                precision=100 * p[c].item(),
                recall=100 * r[c].item(),
                f1=100 * f[c].item(),
                support=int(support[c]))
            if per_auroc is not None:
                row['auroc'] = 100 * per_auroc[c].item()
            if per_ap is not None:
                row['ap'] = 100 * per_ap[c].item()
            rows.append(row)
        self.last_per_class = rows
        if self.per_class:
            header = list(rows[0].keys())
            shown = rows
            note = ''
            if len(rows) > 50:
                shown = sorted(rows, key=lambda x: x['f1'])[:20]
                note = (f' (the 20 of {len(rows)} classes with the lowest '
                        'F1; set save_dir for the full table)')
            print_log(
                f'Per-class results, percent{note}:\n' +
                format_table(header, [list(x.values()) for x in shown]),
                logger='current')
        if self.save_dir:
            os.makedirs(self.save_dir, exist_ok=True)
            path = osp.join(self.save_dir, 'per_class.csv')
            with open(path, 'w', newline='') as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
                writer.writeheader()
                writer.writerows(rows)
            if not self.multi_label:
                cm = confusion_matrix(preds, targets, num_classes)
                np.savetxt(
                    osp.join(self.save_dir, 'confusion_matrix.csv'),
                    cm.numpy(), fmt='%d', delimiter=',',
                    header=','.join(classes))
            print_log(f'ClsMetric: wrote per-class results to {path}',
                      logger='current')
