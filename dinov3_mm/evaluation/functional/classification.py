"""Classification metric functions: accuracy, P / R / F1, AUROC, AP.

The functions take tensors, numpy arrays or lists and return fractions in
``[0, 1]`` (Python floats) or tensors; they follow the definitions of
scikit-learn so results can be cross-checked against it:

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

:class:`~dinov3_mm.evaluation.metrics.ClsMetric` reports these values in
percent.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor

ArrayLike = Union[Tensor, np.ndarray, Sequence]
AVERAGES = ('macro', 'weighted', 'micro')


def as_tensor(value: ArrayLike,
              dtype: Optional[torch.dtype] = None) -> Tensor:
    """A CPU tensor of ``value`` (no copy where possible).

    Args:
        value (Tensor | ndarray | Sequence): The values.
        dtype (torch.dtype, optional): Cast to this dtype when given.

    Returns:
        Tensor: ``value`` detached, on the CPU.
    """
    if isinstance(value, Tensor):
        out = value.detach().cpu()
    elif isinstance(value, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(value))
    else:
        out = torch.as_tensor(value)
    return out.to(dtype) if dtype is not None else out


def check_class_indices(labels: Tensor, num_classes: int, what: str) -> None:
    """Raise ``ValueError`` unless every index lies in ``[0, num_classes)``.

    Args:
        labels (Tensor): Class indices.
        num_classes (int): Number of classes.
        what (str): Name of ``labels`` in the message.
    """
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
    scores = as_tensor(scores, torch.float64)
    labels = as_tensor(labels, torch.long).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f'Expected scores (N, C) and labels (N,), got '
                         f'{tuple(scores.shape)} and {tuple(labels.shape)}.')
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(
            f'k={k} must be in [1, num_classes={scores.shape[1]}].')
    if labels.numel() == 0:
        return float('nan')
    check_class_indices(labels, scores.shape[1], 'labels')
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
    pred = as_tensor(pred, torch.long).reshape(-1)
    labels = as_tensor(labels, torch.long).reshape(-1)
    if pred.shape != labels.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and labels '
                         f'{tuple(labels.shape)} differ in shape.')
    check_class_indices(pred, num_classes, 'pred')
    check_class_indices(labels, num_classes, 'labels')
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
    pred_t, labels_t = as_tensor(pred), as_tensor(labels)
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
    scores = as_tensor(scores, torch.float64).reshape(-1)
    y = as_tensor(binary_labels).reshape(-1)
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
    check_class_indices(labels, num_classes, 'labels')
    return torch.nn.functional.one_hot(labels, num_classes).bool()


def _targets_matrix(scores: Tensor, labels: ArrayLike) -> Tensor:
    labels = as_tensor(labels)
    if labels.ndim == 2:
        if labels.shape != scores.shape:
            raise ValueError(f'Indicator labels {tuple(labels.shape)} do '
                             f'not match scores {tuple(scores.shape)}.')
        return labels.bool()
    return _one_hot(labels, scores.shape[1])


def average_per_class(values: Tensor, support: Tensor, average: Optional[str],
                      what: str, classes: Optional[Sequence[str]] = None
                      ) -> Union[float, Tensor]:
    """Mean of the defined (non-``nan``) per-class values.

    Classes whose value is ``nan`` are left out, with a logged note naming
    them.

    Args:
        values (Tensor): ``(C,)`` per-class values.
        support (Tensor): ``(C,)`` positives per class (``'weighted'``).
        average (str, optional): ``'macro'``, ``'weighted'`` or ``None``
            (``values`` unchanged).
        what (str): Name of the quantity in the note.
        classes (Sequence[str], optional): Class names for the note.

    Returns:
        float | Tensor: The mean (``nan`` when no class is defined), or
        ``values`` for ``average=None``.
    """
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
    scores = as_tensor(scores, torch.float64)
    if scores.ndim == 1:
        return binary_auroc(scores, labels)
    targets = _targets_matrix(scores, labels)
    per_class = torch.tensor(
        [binary_auroc(scores[:, c], targets[:, c])
         for c in range(scores.shape[1])], dtype=torch.float64)
    return average_per_class(per_class, targets.sum(0), average, 'AUROC',
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
    scores = as_tensor(scores, torch.float64)
    if scores.ndim == 1:
        y = as_tensor(labels).reshape(-1).bool()
        if not y.any():
            return float('nan')
        precision, recall, _ = pr_curve(scores, y)
        return -(torch.diff(recall) * precision[:-1]).sum().item()
    targets = _targets_matrix(scores, labels)
    per_class = torch.tensor(
        [average_precision(scores[:, c], targets[:, c])
         for c in range(scores.shape[1])], dtype=torch.float64)
    return average_per_class(per_class, targets.sum(0), average,
                             'Average precision', classes)
