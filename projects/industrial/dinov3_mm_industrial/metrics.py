"""Defect-detection metric of a classifier at a chosen operating point."""
import logging
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from dinov3_mm.evaluation.functional import average_precision, binary_auroc
from dinov3_mm.registry import METRICS
from .operating_point import (best_f1, precision_at_recall,
                              recall_at_precision, threshold_sweep,
                              write_sweep)

ClassSpec = Union[str, int, Sequence[Union[str, int]], None]
SELECTIONS = ('recall', 'precision', 'f1')


def _tag(target: float) -> str:
    """``0.95`` -> ``'95'``, ``0.995`` -> ``'99.5'``."""
    return format(round(target * 100, 6), 'g')


@METRICS.register_module()
class OperatingPointMetric(BaseMetric):
    """Precision, recall, F1 and FPR of "defect vs good" at a threshold.

    A multi-class classifier is turned into a binary defect detector: the
    defect score of a sample is the sum (or max) of its predicted
    probabilities over the positive classes, and it is flagged when the
    score reaches a threshold. The metric sweeps the thresholds and reports,
    under the prefix (default ``defect``):

    * ``auroc`` and ``ap`` (average precision) of the defect score;
    * ``precision@recall<R>`` and ``threshold@recall<R>`` for
      ``target_recall`` (``R`` in percent, e.g. ``recall95``);
    * ``recall@precision<P>`` and ``threshold@precision<P>`` for
      ``target_precision``;
    * ``best_f1`` and ``threshold@best_f1``;
    * ``threshold``, ``precision``, ``recall``, ``f1``, ``fpr`` at the
      selected operating point (see ``select``).

    Rates are percentages in ``[0, 100]`` like ``ClsMetric``; thresholds are
    raw scores in ``[0, 1]``. An unreachable target gives threshold ``nan``
    and a rate of 0, with a warning.

    Args:
        positive (str | int | Sequence, optional): Defect classes (names of
            ``dataset_meta['classes']`` or indices).
        negative (str | int | Sequence, optional): Good classes; the
            positives are then every other class. Give exactly one of
            ``positive`` and ``negative``. Defaults to ``'good'`` when
            neither is given.
        target_recall (float, optional): Required recall in ``[0, 1]``.
            Defaults to 0.95.
        target_precision (float, optional): Required precision. Defaults to
            None.
        select (str, optional): Which point is "the" operating point:
            ``'recall'`` (needs ``target_recall``), ``'precision'`` (needs
            ``target_precision``) or ``'f1'``. Defaults to the first of
            those whose target is set.
        thresholds (int | Sequence[float], optional): None sweeps every
            distinct score (exact); an int ``n`` sweeps ``n`` evenly spaced
            values in ``[0, 1]``; a sequence sweeps those. Defaults to None.
        score_mode (str): ``'sum'`` or ``'max'`` of the positive classes'
            probabilities. Defaults to ``'sum'``.
        sweep_file (str, optional): Write the sweep there (``.csv`` or
            ``.json``, see :func:`~dinov3_mm_industrial.operating_point.
            write_sweep`) after each evaluation.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Defaults to ``'defect'``.
    """

    default_prefix: Optional[str] = 'defect'

    def __init__(self,
                 positive: ClassSpec = None,
                 negative: ClassSpec = None,
                 target_recall: Optional[float] = 0.95,
                 target_precision: Optional[float] = None,
                 select: Optional[str] = None,
                 thresholds: Union[int, Sequence[float], None] = None,
                 score_mode: str = 'sum',
                 sweep_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if positive is not None and negative is not None:
            raise ValueError('OperatingPointMetric: give positive or negative '
                             'classes, not both.')
        if positive is None and negative is None:
            negative = 'good'
        self.positive = self._as_list(positive)
        self.negative = self._as_list(negative)
        for name, value in (('target_recall', target_recall),
                            ('target_precision', target_precision)):
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {value}.')
        self.target_recall = target_recall
        self.target_precision = target_precision
        if select is None:
            select = ('recall' if target_recall is not None else
                      'precision' if target_precision is not None else 'f1')
        if select not in SELECTIONS:
            raise ValueError(f'select={select!r}; expected one of '
                             f'{SELECTIONS}.')
        if select == 'recall' and target_recall is None or \
                select == 'precision' and target_precision is None:
            raise ValueError(f"select={select!r} needs target_{select}.")
        self.select = select
        if isinstance(thresholds, int):
            if thresholds < 2:
                raise ValueError(f'thresholds={thresholds}: an int asks for '
                                 'that many evenly spaced values, at least 2.')
            thresholds = torch.linspace(0, 1, thresholds).tolist()
        self.thresholds = (None if thresholds is None else
                           [float(t) for t in thresholds])
        if score_mode not in ('sum', 'max'):
            raise ValueError(f"score_mode={score_mode!r}; use 'sum' or 'max'.")
        self.score_mode = score_mode
        self.sweep_file = sweep_file
        self.last_sweep: Optional[Dict[str, torch.Tensor]] = None

    @staticmethod
    def _as_list(spec: ClassSpec) -> Optional[list]:
        if spec is None:
            return None
        if isinstance(spec, (str, int)):
            return [spec]
        return list(spec)

    # ----------------------------------------------------------- collecting
    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each sample's class scores and true label(s)."""
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            if 'pred_score' not in sample:
                raise KeyError('OperatingPointMetric needs `pred_score` '
                               '(class probabilities) in the predictions; '
                               'use a classifier head that sets it.')
            if 'gt_label' not in sample:
                raise KeyError('OperatingPointMetric: a data sample has no '
                               '`gt_label`; the pipeline must pack labels.')
            self.results.append(dict(
                pred_score=torch.as_tensor(sample['pred_score']).detach()
                .cpu().float().reshape(-1).clone(),
                gt_label=torch.as_tensor(sample['gt_label']).detach().cpu()
                .long().reshape(-1).clone()))

    # ----------------------------------------------------------- computing
    def _index(self, spec: Union[str, int], num_classes: int) -> int:
        if isinstance(spec, str):
            classes = list((self.dataset_meta or {}).get('classes') or [])
            if spec not in classes:
                raise ValueError(
                    f'OperatingPointMetric: class {spec!r} is not in the '
                    f'dataset classes {classes}; name one of them or give '
                    'class indices.')
            return classes.index(spec)
        index = int(spec)
        if not 0 <= index < num_classes:
            raise ValueError(f'OperatingPointMetric: class index {index} is '
                             f'outside [0, {num_classes}).')
        return index

    def positive_indices(self, num_classes: int) -> List[int]:
        """Indices of the defect classes."""
        if self.positive is not None:
            pos = sorted({self._index(c, num_classes) for c in self.positive})
        else:
            neg = {self._index(c, num_classes) for c in self.negative}
            pos = [i for i in range(num_classes) if i not in neg]
        if not pos or len(pos) == num_classes:
            raise ValueError(
                f'OperatingPointMetric: positives {pos} of {num_classes} '
                'classes; at least one class must be positive and one '
                'negative.')
        return pos

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Sweep the thresholds and pick the operating points."""
        if not results:
            print_log('OperatingPointMetric: no results to evaluate.',
                      logger='current', level=logging.WARNING)
            return {}
        scores = torch.stack([r['pred_score'] for r in results]).double()
        pos = self.positive_indices(scores.shape[1])
        pos_t = torch.tensor(pos)
        defect = (scores[:, pos_t].sum(1) if self.score_mode == 'sum' else
                  scores[:, pos_t].max(1).values)
        truth = torch.tensor([bool(torch.isin(r['gt_label'], pos_t).any())
                              for r in results])
        sweep = threshold_sweep(defect, truth, self.thresholds)
        self.last_sweep = sweep
        metrics = dict(auroc=100 * binary_auroc(defect, truth),
                       ap=100 * average_precision(defect, truth))
        points = {}
        if self.target_recall is not None:
            p = precision_at_recall(sweep, self.target_recall)
            tag = _tag(self.target_recall)
            metrics[f'precision@recall{tag}'] = 100 * p['precision']
            metrics[f'threshold@recall{tag}'] = p['threshold']
            points['recall'] = p
        if self.target_precision is not None:
            p = recall_at_precision(sweep, self.target_precision)
            tag = _tag(self.target_precision)
            metrics[f'recall@precision{tag}'] = 100 * p['recall']
            metrics[f'threshold@precision{tag}'] = p['threshold']
            points['precision'] = p
        points['f1'] = best_f1(sweep)
        metrics['best_f1'] = 100 * points['f1']['f1']
        metrics['threshold@best_f1'] = points['f1']['threshold']
        chosen = points[self.select]
        if math.isnan(chosen['threshold']):
            print_log(
                f'OperatingPointMetric: no threshold reaches the target '
                f'{self.select}; the reported operating point is empty.',
                logger='current', level=logging.WARNING)
        metrics['threshold'] = chosen['threshold']
        for key in ('precision', 'recall', 'f1', 'fpr'):
            metrics[key] = 100 * chosen[key]
        if self.sweep_file:
            names = list((self.dataset_meta or {}).get('classes') or [])
            summary = dict(metrics, positive_classes=pos,
                           positive_names=[names[i] for i in pos
                                           if i < len(names)],
                           num_positive=int(truth.sum()),
                           num_negative=int((~truth).sum()),
                           select=self.select)
            write_sweep(self.sweep_file, sweep, summary)
            print_log(f'OperatingPointMetric: sweep written to '
                      f'{self.sweep_file}', logger='current')
        return metrics
