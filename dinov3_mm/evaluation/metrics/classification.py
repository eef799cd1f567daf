"""Classification metrics: accuracy, precision / recall / F1, AUROC, mAP.

The pure functions below take tensors, numpy arrays or lists and return
fractions in ``[0, 1]`` (Python floats) or tensors; they follow the
definitions of scikit-learn so results can be cross-checked against it:

* ``confusion_matrix`` - rows are true classes, columns predicted classes.
* ``precision_recall_f1`` - a class without predicted (or true) samples has
  precision (or recall) 0; ``'macro'`` averages over the classes present in
  the labels or the predictions (single-label) or over every column
  (multi-label indicator input), ``'weighted'`` weights by support,
  ``'micro'`` pools the counts.
* ``roc_curve`` / ``binary_auroc`` - every distinct score is a threshold, so
  tied scores move along the diagonal and the trapezoidal area counts a tied
  positive/negative pair as one half (the Mann-Whitney statistic).
* ``pr_curve`` / ``average_precision`` - ``AP = sum_n (R_n - R_{n-1}) P_n``
  (no interpolation).

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

ArrayLike = Union[Tensor, np.ndarray, Sequence]
AVERAGES = ('macro', 'weighted', 'micro')


def _as_tensor(value: ArrayLike,
               dtype: Optional[torch.dtype] = None) -> Tensor:
    if isinstance(value, Tensor):
        out = value.detach().cpu()
    elif isinstance(value, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(value))
    else:
        out = torch.as_tensor(value)
    return out.to(dtype) if dtype is not None else out


def _check_num_classes(labels: Tensor, num_classes: int, what: str) -> None:
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f'{what} must lie in [0, {num_classes - 1}] for num_classes='
            f'{num_classes}; got values in [{int(labels.min())}, '
            f'{int(labels.max())}]. Check the dataset classes and the head.')


def topk_accuracy(scores: ArrayLike, labels: ArrayLike, k: int = 1) -> float:
    """Fraction of samples whose true class is among the ``k`` best scores.

    Args:
        scores (Tensor | ndarray): ``(N, C)`` class scores.
        labels (Tensor | ndarray): ``(N,)`` true class indices.
        k (int): How many of the best-scored classes count. Defaults to 1.

    Returns:
        float: Accuracy in ``[0, 1]`` (``nan`` for no samples). Among equal
        scores the lower class index ranks first (``torch.topk`` order).
    """
    scores = _as_tensor(scores, torch.float64)
    labels = _as_tensor(labels, torch.long).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f'Expected scores (N, C) and labels (N,), got '
                         f'{tuple(scores.shape)} and {tuple(labels.shape)}.')
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(
            f'k={k} must be in [1, num_classes={scores.shape[1]}].')
    if labels.numel() == 0:
        return float('nan')
    _check_num_classes(labels, scores.shape[1], 'labels')
    # Stable descending sort keeps the lowest index first among ties.
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    hits = (order[:, :k] == labels[:, None]).any(dim=1)
    return hits.double().mean().item()


def confusion_matrix(pred: ArrayLike, labels: ArrayLike,
                     num_classes: int) -> Tensor:
    """Count (true class, predicted class) pairs.

    Args:
        pred (Tensor | ndarray): ``(N,)`` predicted class indices.
        labels (Tensor | ndarray): ``(N,)`` true class indices.
        num_classes (int): Number of classes ``C``.

    Returns:
        Tensor: ``(C, C)`` int64; entry ``[i, j]`` counts samples of true
        class ``i`` predicted as ``j``.
    """
    pred = _as_tensor(pred, torch.long).reshape(-1)
    labels = _as_tensor(labels, torch.long).reshape(-1)
    if pred.shape != labels.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and labels '
                         f'{tuple(labels.shape)} differ in shape.')
    _check_num_classes(pred, num_classes, 'pred')
    _check_num_classes(labels, num_classes, 'labels')
    flat = labels * num_classes + pred
    return torch.bincount(flat, minlength=num_classes**2).reshape(
        num_classes, num_classes)


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp_min(1e-300),
                       torch.zeros_like(num))


def precision_recall_f1(
    pred: ArrayLike,
    labels: ArrayLike,
    num_classes: Optional[int] = None,
    average: Optional[str] = 'macro'
) -> Tuple[Union[float, Tensor], Union[float, Tensor], Union[float, Tensor],
           Tensor]:
    """Precision, recall and F1, per class or averaged.

    Args:
        pred (Tensor | ndarray): ``(N,)`` predicted indices, or an ``(N, C)``
            0/1 indicator matrix for multi-label data.
        labels (Tensor | ndarray): ``(N,)`` true indices, or an ``(N, C)``
            indicator matrix (multi-label).
        num_classes (int, optional): ``C``; required for index input.
        average (str, optional): ``'macro'`` (unweighted mean of the per-class
            values), ``'weighted'`` (mean weighted by support), ``'micro'``
            (from pooled counts) or ``None`` (per-class tensors).
            Defaults to ``'macro'``.

    Returns:
        tuple: ``(precision, recall, f1, support)``; the first three are
        floats in ``[0, 1]`` when averaged, else ``(C,)`` float64 tensors;
        ``support`` is the ``(C,)`` count of true samples per class.
        A zero denominator gives 0, as in scikit-learn. For index input,
        ``'macro'`` averages over the classes present in ``labels`` or
        ``pred``; for indicator input over all ``C`` columns.
    """
    if average not in AVERAGES + (None, ):
        raise ValueError(f'average={average!r}; choose one of {AVERAGES} '
                         'or None.')
    pred_t, labels_t = _as_tensor(pred), _as_tensor(labels)
    if pred_t.ndim == 2:  # multi-label indicator matrices
        if labels_t.shape != pred_t.shape:
            raise ValueError(f'Indicator pred {tuple(pred_t.shape)} and '
                             f'labels {tuple(labels_t.shape)} differ.')
        p, t = pred_t.bool(), labels_t.bool()
        tp = (p & t).sum(0).double()
        fp = (p & ~t).sum(0).double()
        fn = (~p & t).sum(0).double()
        present = torch.ones_like(tp, dtype=torch.bool)
    else:
        if num_classes is None:
            raise ValueError('num_classes is required for index labels.')
        cm = confusion_matrix(pred_t, labels_t, num_classes).double()
        tp = cm.diag()
        fp = cm.sum(0) - tp
        fn = cm.sum(1) - tp
        present = (cm.sum(0) + cm.sum(1)) > 0
    support = (tp + fn).long()
    if average == 'micro':
        tp_s, fp_s, fn_s = tp.sum(), fp.sum(), fn.sum()
        precision = _safe_div(tp_s, tp_s + fp_s)
        recall = _safe_div(tp_s, tp_s + fn_s)
        f1 = _safe_div(2 * tp_s, 2 * tp_s + fp_s + fn_s)
        return precision.item(), recall.item(), f1.item(), support
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    if average is None:
        return precision, recall, f1, support
    if average == 'macro':
        if not present.any():
            return float('nan'), float('nan'), float('nan'), support
        return (precision[present].mean().item(),
                recall[present].mean().item(), f1[present].mean().item(),
                support)
    weights = support.double()
    if weights.sum() == 0:
        return float('nan'), float('nan'), float('nan'), support
    weights = weights / weights.sum()
    return ((precision * weights).sum().item(),
            (recall * weights).sum().item(), (f1 * weights).sum().item(),
            support)


def _binary_clf_curve(
        scores: ArrayLike,
        binary_labels: ArrayLike) -> Tuple[Tensor, Tensor, Tensor]:
    """Cumulative false / true positives at each distinct score, descending."""
    scores = _as_tensor(scores, torch.float64).reshape(-1)
    y = _as_tensor(binary_labels).reshape(-1)
    if scores.shape != y.shape:
        raise ValueError(f'scores {tuple(scores.shape)} and labels '
                         f'{tuple(y.shape)} differ in shape.')
    y = y.bool().double()
    order = torch.sort(scores, descending=True, stable=True).indices
    scores, y = scores[order], y[order]
    # last index of every run of equal scores
    if scores.numel():
        distinct = torch.nonzero(scores[1:] != scores[:-1]).reshape(-1)
        ends = torch.cat([distinct, torch.tensor([scores.numel() - 1])])
    else:
        ends = torch.zeros(0, dtype=torch.long)
    tps = torch.cumsum(y, 0)[ends]
    fps = (ends + 1).double() - tps
    return fps, tps, scores[ends]


def roc_curve(scores_1d: ArrayLike,
              binary_labels: ArrayLike) -> Tuple[Tensor, Tensor, Tensor]:
    """Receiver operating characteristic of one binary problem.

    Args:
        scores_1d (Tensor | ndarray): ``(N,)`` scores; higher means positive.
        binary_labels (Tensor | ndarray): ``(N,)`` truth, nonzero = positive.

    Returns:
        tuple: ``(fpr, tpr, thresholds)`` float64 tensors, starting at
        ``(0, 0)`` with threshold ``inf``; one point per distinct score
        (intermediate collinear points are kept). A rate whose class is
        absent is all ``nan``.
    """
    fps, tps, thr = _binary_clf_curve(scores_1d, binary_labels)
    zero = torch.zeros(1, dtype=torch.float64)
    fps, tps = torch.cat([zero, fps]), torch.cat([zero, tps])
    thr = torch.cat([torch.tensor([math.inf], dtype=torch.float64), thr])
    fpr = fps / fps[-1] if fps[-1] > 0 else torch.full_like(fps, math.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else torch.full_like(tps, math.nan)
    return fpr, tpr, thr


def binary_auroc(scores_1d: ArrayLike, binary_labels: ArrayLike) -> float:
    """Area under the ROC curve of one binary problem (trapezoidal rule).

    Args:
        scores_1d (Tensor | ndarray): ``(N,)`` scores.
        binary_labels (Tensor | ndarray): ``(N,)`` truth, nonzero = positive.

    Returns:
        float: AUROC in ``[0, 1]``, or ``nan`` without positives or without
        negatives (undefined).
    """
    fpr, tpr, _ = roc_curve(scores_1d, binary_labels)
    if torch.isnan(fpr).any() or torch.isnan(tpr).any():
        return float('nan')
    return torch.trapezoid(tpr, fpr).item()


def _one_hot(labels: Tensor, num_classes: int) -> Tensor:
    labels = labels.reshape(-1).long()
    _check_num_classes(labels, num_classes, 'labels')
    return torch.nn.functional.one_hot(labels, num_classes).bool()


def _targets_matrix(scores: Tensor, labels: ArrayLike) -> Tensor:
    labels = _as_tensor(labels)
    if labels.ndim == 2:
        if labels.shape != scores.shape:
            raise ValueError(f'Indicator labels {tuple(labels.shape)} do '
                             f'not match scores {tuple(scores.shape)}.')
        return labels.bool()
    return _one_hot(labels, scores.shape[1])


def _average_per_class(values: Tensor, support: Tensor, average: Optional[str],
                       what: str, classes: Optional[Sequence[str]] = None
                       ) -> Union[float, Tensor]:
    if average is None:
        return values
    defined = ~torch.isnan(values)
    if not defined.all():
        skipped = torch.nonzero(~defined).reshape(-1).tolist()
        names = [classes[i] if classes else i for i in skipped]
        shown = names[:10] + (['...'] if len(names) > 10 else [])
        print_log(
            f'{what}: {len(skipped)} of {values.numel()} classes have no '
            f'positive or no negative samples and are left out of the '
            f'{average} mean: {shown}', logger='current')
    if not defined.any():
        return float('nan')
    if average == 'macro':
        return values[defined].mean().item()
    if average == 'weighted':
        w = support[defined].double()
        return (values[defined] * w).sum().item() / max(w.sum().item(), 1e-300)
    raise ValueError(f'average={average!r}; choose macro, weighted or None.')


def auroc(scores: ArrayLike,
          labels: ArrayLike,
          average: Optional[str] = 'macro',
          classes: Optional[Sequence[str]] = None) -> Union[float, Tensor]:
    """AUROC, binary or one-vs-rest.

    Args:
        scores (Tensor | ndarray): ``(N,)`` binary scores, or ``(N, C)``
            class scores.
        labels (Tensor | ndarray): ``(N,)`` 0/1 truth for 1-D scores;
            ``(N,)`` class indices or an ``(N, C)`` indicator matrix for 2-D
            scores.
        average (str, optional): ``'macro'``, ``'weighted'`` (by class
            prevalence) or ``None`` for the ``(C,)`` per-class tensor.
            Classes without positives or without negatives are ``nan`` and
            left out of the mean (a note is logged). Defaults to ``'macro'``.
        classes (Sequence[str], optional): Names used in that note.

    Returns:
        float | Tensor: Values in ``[0, 1]``.
    """
    scores = _as_tensor(scores, torch.float64)
    if scores.ndim == 1:
        return binary_auroc(scores, labels)
    targets = _targets_matrix(scores, labels)
    per_class = torch.tensor(
        [binary_auroc(scores[:, c], targets[:, c])
         for c in range(scores.shape[1])], dtype=torch.float64)
    return _average_per_class(per_class, targets.sum(0), average, 'AUROC',
                              classes)


def pr_curve(scores_1d: ArrayLike,
             binary_labels: ArrayLike) -> Tuple[Tensor, Tensor, Tensor]:
    """Precision-recall curve of one binary problem (scikit-learn layout).

    Args:
        scores_1d (Tensor | ndarray): ``(N,)`` scores.
        binary_labels (Tensor | ndarray): ``(N,)`` truth, nonzero = positive.

    Returns:
        tuple: ``(precision, recall, thresholds)``; thresholds ascend over
        the distinct scores, ``precision`` and ``recall`` have one more
        entry, ending at ``(1, 0)``. Without positives recall is all 1.
    """
    fps, tps, thr = _binary_clf_curve(scores_1d, binary_labels)
    precision = _safe_div(tps, tps + fps)
    if tps.numel() == 0 or tps[-1] == 0:
        recall = torch.ones_like(tps)
    else:
        recall = tps / tps[-1]
    one = torch.ones(1, dtype=torch.float64)
    return (torch.cat([precision.flip(0), one]),
            torch.cat([recall.flip(0), torch.zeros_like(one)]), thr.flip(0))


def average_precision(scores: ArrayLike,
                      labels: ArrayLike,
                      average: Optional[str] = 'macro',
                      classes: Optional[Sequence[str]] = None
                      ) -> Union[float, Tensor]:
    """Average precision ``sum_n (R_n - R_{n-1}) P_n``; 2-D input gives mAP.

    Args:
        scores (Tensor | ndarray): ``(N,)`` binary scores or ``(N, C)``.
        labels (Tensor | ndarray): ``(N,)`` 0/1 truth for 1-D scores;
            ``(N,)`` indices or ``(N, C)`` indicator matrix for 2-D scores.
        average (str, optional): For 2-D input: ``'macro'`` (mAP),
            ``'weighted'`` or ``None`` (per-class). Defaults to ``'macro'``.
        classes (Sequence[str], optional): Names for the skipped-classes note.

    Returns:
        float | Tensor: Values in ``[0, 1]``; ``nan`` for a class without
        positives (left out of the mean, with a note).
    """
    scores = _as_tensor(scores, torch.float64)
    if scores.ndim == 1:
        y = _as_tensor(labels).reshape(-1).bool()
        if not y.any():
            return float('nan')
        precision, recall, _ = pr_curve(scores, y)
        return -(torch.diff(recall) * precision[:-1]).sum().item()
    targets = _targets_matrix(scores, labels)
    per_class = torch.tensor(
        [average_precision(scores[:, c], targets[:, c])
         for c in range(scores.shape[1])], dtype=torch.float64)
    return _average_per_class(per_class, targets.sum(0), average,
                              'Average precision', classes)


def format_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Render rows as a plain-text table with aligned columns."""
    cells = [[str(h) for h in header]] + [[
        f'{v:.2f}' if isinstance(v, float) else str(v) for v in row
    ] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        '  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(r, widths))) for r in cells
    ]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


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
                result['pred_score'] = _as_tensor(
                    sample['pred_score'], torch.float32).reshape(-1).clone()
            elif 'pred_label' in sample:
                result['pred_label'] = _as_tensor(
                    sample['pred_label'], torch.long).reshape(-1).clone()
            else:
                raise KeyError('ClsMetric: a prediction has neither '
                               '`pred_score` nor `pred_label`; make the '
                               "model's predict() fill one of them.")
            if 'gt_label' in sample:
                result['gt_label'] = _as_tensor(
                    sample['gt_label'], torch.long).reshape(-1).clone()
            elif 'gt_score' in sample:
                result['gt_score'] = _as_tensor(
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
                    _check_num_classes(r['gt_label'], num_classes,
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
            macro = _average_per_class(per_auroc, targets.sum(0), 'macro',
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
