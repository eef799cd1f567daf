"""Binary decisions at a score threshold: sweeps and operating points.

A sample is predicted positive (defective) when ``score >= threshold``. A
sweep evaluates every threshold of a list - by default every distinct
score, which covers every distinct decision - and the selectors pick the
operating point a requirement asks for:

* :func:`precision_at_recall` - the best precision among thresholds whose
  recall reaches a target (e.g. "find 95 % of the defects");
* :func:`recall_at_precision` - the best recall among thresholds whose
  precision reaches a target (e.g. "at most 1 false alarm in 10");
* :func:`best_f1` - the threshold with the highest F1.

Ties go to the highest threshold, i.e. the fewest alarms. Conventions: a
threshold that predicts nothing positive has precision 0 (as
``sklearn.metrics.precision_score(zero_division=0)``); recall is ``nan``
without positives and FPR is ``nan`` without negatives.
"""
import csv
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

ArrayLike = Union[Tensor, Sequence[float]]
SWEEP_COLUMNS = ('threshold', 'tp', 'fp', 'tn', 'fn', 'precision', 'recall',
                 'f1', 'fpr')


def _as_1d(values: ArrayLike, dtype: torch.dtype, name: str) -> Tensor:
    if isinstance(values, Tensor):
        out = values.detach().cpu().to(dtype)
    else:  # straight to ``dtype``: no float32 rounding of Python floats
        out = torch.as_tensor(values, dtype=dtype)
    if out.ndim != 1:
        out = out.reshape(-1)
    if dtype.is_floating_point and torch.isnan(out).any():
        raise ValueError(f'{name} contains NaN.')
    return out


def threshold_sweep(scores: ArrayLike,
                    labels: ArrayLike,
                    thresholds: Optional[ArrayLike] = None
                    ) -> Dict[str, Tensor]:
    """Confusion counts and rates at every threshold.

    Args:
        scores (Tensor | Sequence[float]): ``(N,)`` scores; higher means
            more likely positive.
        labels (Tensor | Sequence): ``(N,)`` truth, nonzero = positive.
        thresholds (Tensor | Sequence[float], optional): Thresholds to
            evaluate. Defaults to None: every distinct score.

    Returns:
        dict: One ``(T,)`` float64 tensor per :data:`SWEEP_COLUMNS` entry,
        thresholds in descending order.
    """
    s = _as_1d(scores, torch.float64, 'scores')
    y = _as_1d(labels, torch.float64, 'labels') != 0
    if s.shape != y.shape:
        raise ValueError(f'scores ({s.numel()}) and labels ({y.numel()}) '
                         'differ in length.')
    if thresholds is None:
        thr = torch.unique(s)
    else:
        thr = torch.unique(_as_1d(thresholds, torch.float64, 'thresholds'))
    thr = thr.flip(0)
    # number of scores >= t = N - (number of scores < t)
    pos_sorted = s[y].sort().values
    neg_sorted = s[~y].sort().values
    tp = pos_sorted.numel() - torch.searchsorted(pos_sorted, thr, right=False)
    fp = neg_sorted.numel() - torch.searchsorted(neg_sorted, thr, right=False)
    tp, fp = tp.double(), fp.double()
    n_pos, n_neg = float(pos_sorted.numel()), float(neg_sorted.numel())
    fn, tn = n_pos - tp, n_neg - fp
    predicted = tp + fp
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1),
                            torch.zeros_like(tp))
    recall = tp / n_pos if n_pos else torch.full_like(tp, math.nan)
    fpr = fp / n_neg if n_neg else torch.full_like(fp, math.nan)
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp_min(1),
                     torch.zeros_like(tp))
    return dict(threshold=thr, tp=tp, fp=fp, tn=tn, fn=fn,
                precision=precision, recall=recall, f1=f1, fpr=fpr)


def _pick(sweep: Dict[str, Tensor], ok: Tensor, key: str) -> Optional[int]:
    """Row with the largest ``key`` among ``ok`` rows; ties: highest
    threshold (rows are in descending threshold order, so the first)."""
    if not ok.any():
        return None
    values = torch.where(ok, sweep[key], torch.full_like(sweep[key], -1.0))
    return int(torch.nonzero(values == values.max())[0])


def _point(sweep: Dict[str, Tensor], row: Optional[int]) -> Dict[str, float]:
    if row is None:
        return dict(threshold=math.nan, precision=0.0, recall=0.0, f1=0.0,
                    fpr=math.nan)
    return {k: float(sweep[k][row])
            for k in ('threshold', 'precision', 'recall', 'f1', 'fpr')}


def precision_at_recall(sweep: Dict[str, Tensor],
                        target: float) -> Dict[str, float]:
    """Best precision among thresholds with ``recall >= target``.

    Args:
        sweep (dict): Output of :func:`threshold_sweep`.
        target (float): Required recall in ``[0, 1]``.

    Returns:
        dict: ``threshold``, ``precision``, ``recall``, ``f1``, ``fpr`` of
        the chosen row; threshold ``nan`` and precision 0 when no threshold
        reaches the target.
    """
    _check_target(target, 'recall')
    ok = ~torch.isnan(sweep['recall']) & (sweep['recall'] >= target - 1e-12)
    return _point(sweep, _pick(sweep, ok, 'precision'))


def recall_at_precision(sweep: Dict[str, Tensor],
                        target: float) -> Dict[str, float]:
    """Best recall among thresholds with ``precision >= target``.

    Thresholds that predict nothing positive do not count.

    Args:
        sweep (dict): Output of :func:`threshold_sweep`.
        target (float): Required precision in ``[0, 1]``.

    Returns:
        dict: As :func:`precision_at_recall`; threshold ``nan`` and recall
        0 when no threshold reaches the target.
    """
    _check_target(target, 'precision')
    ok = ((sweep['tp'] + sweep['fp']) > 0) & \
        (sweep['precision'] >= target - 1e-12) & ~torch.isnan(sweep['recall'])
    return _point(sweep, _pick(sweep, ok, 'recall'))


def best_f1(sweep: Dict[str, Tensor]) -> Dict[str, float]:
    """The threshold with the highest F1 (see :func:`precision_at_recall`)."""
    ok = torch.ones_like(sweep['f1'], dtype=torch.bool)
    return _point(sweep, _pick(sweep, ok, 'f1'))


def _check_target(target: float, name: str) -> None:
    if not 0 <= target <= 1:
        raise ValueError(f'Target {name} must be in [0, 1], got {target}.')


def sweep_rows(sweep: Dict[str, Tensor]) -> List[Dict[str, float]]:
    """The sweep as a list of row dicts (counts as ints)."""
    counts = ('tp', 'fp', 'tn', 'fn')
    return [{
        k: (int(sweep[k][i]) if k in counts else float(sweep[k][i]))
        for k in SWEEP_COLUMNS
    } for i in range(sweep['threshold'].numel())]


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_sweep(path: str,
                sweep: Dict[str, Tensor],
                summary: Optional[dict] = None) -> str:
    """Write a sweep as CSV (one row per threshold) or JSON.

    The format follows the extension: ``.csv`` writes
    :data:`SWEEP_COLUMNS`; ``.json`` writes ``{"summary": ..., "sweep":
    [rows]}`` with ``NaN`` as ``null``.

    Args:
        path (str): ``*.csv`` or ``*.json``; parent folders are created.
        sweep (dict): Output of :func:`threshold_sweep`.
        summary (dict, optional): Extra values stored in the JSON file.

    Returns:
        str: ``path``.
    """
    ext = osp.splitext(path)[1].lower()
    if ext not in ('.csv', '.json'):
        raise ValueError(f'Sweep file {path!r} must end with .csv or .json.')
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    rows = sweep_rows(sweep)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        if ext == '.csv':
            writer = csv.DictWriter(f, fieldnames=SWEEP_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            json.dump(_json_safe(dict(summary=summary or {}, sweep=rows)), f,
                      indent=1)
    return path
