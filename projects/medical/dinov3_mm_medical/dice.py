"""Per-volume, per-class Dice of label volumes, and its CSV / table."""
import csv
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from dinov3_mm.utils import atomic_write_text

DiceRow = Tuple[str, np.ndarray]


def dice_per_class(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                   ignore_index: Optional[int] = 255) -> np.ndarray:
    """``2 |P_c & G_c| / (|P_c| + |G_c|)`` for every class ``c``.

    Voxels whose ground truth is ``ignore_index`` are left out. A class
    absent from both the prediction and the ground truth gives NaN (Dice is
    undefined there), as in the core ``SegMetric``.

    Args:
        pred (np.ndarray): Predicted labels.
        gt (np.ndarray): Ground-truth labels, same shape.
        num_classes (int): Number of classes.
        ignore_index (int, optional): Ground-truth value left out.

    Returns:
        np.ndarray: float64 ``(num_classes,)`` in ``[0, 1]`` or NaN.

    Raises:
        ValueError: shapes differ, or a ground-truth value lies outside the
            classes.
    """
    pred, gt = np.asarray(pred).reshape(-1), np.asarray(gt).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f'Prediction has {pred.size} voxels, ground truth '
                         f'{gt.size}.')
    if ignore_index is not None:
        keep = gt != ignore_index
        pred, gt = pred[keep], gt[keep]
    pred, gt = pred.astype(np.int64), gt.astype(np.int64)
    bad = np.unique(gt[(gt < 0) | (gt >= num_classes)])
    if bad.size:
        raise ValueError(f'Ground-truth values {bad[:10].tolist()} lie '
                         f'outside the {num_classes} classes.')
    valid = (pred >= 0) & (pred < num_classes)
    inter = np.bincount(gt[valid & (pred == gt)], minlength=num_classes)
    area_pred = np.bincount(pred[valid], minlength=num_classes)
    area_gt = np.bincount(gt, minlength=num_classes)
    total = (area_pred + area_gt)[:num_classes].astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(total > 0, 2.0 * inter[:num_classes] / total,
                        np.nan)


def mean_foreground(dice: np.ndarray) -> float:
    """Mean Dice of classes 1.. that are defined (NaN when none is)."""
    values = np.asarray(dice[1:], np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float('nan')


def _fmt(value: float) -> str:
    return 'nan' if math.isnan(value) else f'{value:.6f}'


def dice_header(classes: Sequence[str]) -> List[str]:
    """CSV columns: ``case``, ``dice_<class>`` per class,
    ``mean_foreground``."""
    return ['case'] + [f'dice_{c}' for c in classes] + ['mean_foreground']


def write_dice_csv(rows: Sequence[DiceRow], classes: Sequence[str],
                   path: str) -> str:
    """One row per volume: case, the Dice of every class (0..1, ``nan`` when
    undefined) and the mean over the defined foreground classes."""

    def write_rows(f) -> None:
        writer = csv.writer(f)
        writer.writerow(dice_header(classes))
        for case, dice in rows:
            writer.writerow([case] + [_fmt(float(d)) for d in dice] +
                            [_fmt(mean_foreground(dice))])

    atomic_write_text(path, write_rows, newline='')
    return path


def format_dice_table(rows: Sequence[DiceRow],
                      classes: Sequence[str]) -> str:
    """The Dice rows as an aligned text table (4 decimals)."""
    header = dice_header(classes)
    body = [[case] + [('nan' if math.isnan(float(d)) else f'{float(d):.4f}')
                      for d in dice] +
            [('nan' if math.isnan(mean_foreground(dice)) else
              f'{mean_foreground(dice):.4f}')] for case, dice in rows]
    widths = [max(len(str(r[i])) for r in [header] + body)
              for i in range(len(header))]
    lines = ['  '.join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
             for r in [header] + body]
    return '\n'.join(lines)
