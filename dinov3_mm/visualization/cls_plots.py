"""Classification pictures: confusion matrix, ROC and precision-recall curves.

Figures are drawn with matplotlib's object API on an Agg canvas: no display,
no change of the global pyplot backend. Every function writes a PNG and
returns its path. Large label sets stay readable: cell numbers are written
only up to ``MAX_ANNOTATED`` classes, tick labels up to ``MAX_TICK_LABELS``,
and single curves with a legend up to ``MAX_LEGEND_CURVES`` (beyond that,
faint per-class curves plus the bold micro-average).
"""
import os
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch

MAX_ANNOTATED = 30
MAX_TICK_LABELS = 60
MAX_LEGEND_CURVES = 10
MAX_FAINT_CURVES = 100
MAX_MICRO_PAIRS = 2_000_000

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence]


def _np(value: ArrayLike) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> str:
    path = str(path)
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    fig.savefig(path, format='png', bbox_inches='tight')
    return path


def _short(name: str, limit: int = 20) -> str:
    name = str(name)
    return name if len(name) <= limit else name[:limit - 1] + '\u2026'


def _class_names(classes: Optional[Sequence[str]], n: int) -> list:
    if classes is None or len(classes) != n:
        return [str(i) for i in range(n)]
    return [str(c) for c in classes]


def plot_confusion_matrix(cm: ArrayLike,
                          classes: Optional[Sequence[str]],
                          path: str,
                          normalize: bool = True,
                          title: Optional[str] = None) -> str:
    """Draw a confusion matrix (rows: true class, columns: predicted).

    Args:
        cm (Tensor | ndarray): ``(C, C)`` counts.
        classes (Sequence[str], optional): Class names (indices if None).
        path (str): Output PNG file.
        normalize (bool): Colour and annotate each row as fractions of its
            true class (recall on the diagonal). Defaults to True.
        title (str, optional): Figure title.

    Returns:
        str: ``path``.
    """
    counts = _np(cm).astype(np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f'Confusion matrix must be square, got shape '
                         f'{counts.shape}.')
    n = counts.shape[0]
    names = _class_names(classes, n)
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, rows, out=np.zeros_like(counts),
                           where=rows > 0)
    else:
        values = counts
    side = float(np.clip(0.45 * n + 2.5, 5, 20))
    fig = _new_figure(side + 1.5, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(values, interpolation='nearest', cmap='Blues',
                      vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if n <= MAX_TICK_LABELS:
        ticks = np.arange(n)
        labels = [_short(c) for c in names]
    else:  # ~20 evenly spaced index ticks
        ticks = np.unique(np.linspace(0, n - 1, 20).round().astype(int))
        labels = [str(t) for t in ticks]
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(labels, rotation=90 if n <= MAX_TICK_LABELS else 0,
                       fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    if n <= MAX_ANNOTATED:
        threshold = values.max() / 2 if values.size else 0
        for i in range(n):
            for j in range(n):
                text = (f'{values[i, j]:.2f}' if normalize else
                        f'{int(counts[i, j])}')
                ax.text(j, i, text, ha='center', va='center',
                        fontsize=max(5, 10 - n // 5),
                        color='white' if values[i, j] > threshold else 'black')
    ax.set_xlabel('Predicted class')
    ax.set_ylabel('True class')
    total = counts.sum()
    acc = np.trace(counts) / total if total else float('nan')
    kind = 'row-normalised' if normalize else 'counts'
    ax.set_title(title or (f'Confusion matrix ({kind}; accuracy '
                           f'{100 * acc:.2f}%, n={int(total)})'))
    return _save(fig, path)


def _targets(scores: np.ndarray, labels: ArrayLike) -> np.ndarray:
    labels = _np(labels)
    if labels.ndim == 2:
        return labels.astype(bool)
    onehot = np.zeros(scores.shape, dtype=bool)
    onehot[np.arange(len(labels)), labels.astype(np.int64)] = True
    return onehot


def _plot_curves(scores: ArrayLike, labels: ArrayLike,
                 classes: Optional[Sequence[str]], path: str, kind: str,
                 title: Optional[str]) -> str:
    from dinov3_mm.evaluation.functional import (average_precision,
                                                 binary_auroc, pr_curve,
                                                 roc_curve)
    s = _np(scores).astype(np.float64)
    if s.ndim != 2:
        raise ValueError(f'Expected (N, C) scores, got shape {s.shape}.')
    y = _targets(s, labels)
    n = s.shape[1]
    names = _class_names(classes, n)
    fig = _new_figure(7.5, 6)
    ax = fig.add_subplot(1, 1, 1)
    few = n <= MAX_LEGEND_CURVES
    values = []
    drawn = set(range(n)) if n <= MAX_FAINT_CURVES else set(
        np.linspace(0, n - 1, MAX_FAINT_CURVES).round().astype(int).tolist())
    for c in range(n):
        if kind == 'roc':
            value = binary_auroc(s[:, c], y[:, c])
            x, yv, _ = roc_curve(s[:, c], y[:, c])
        else:
            value = average_precision(s[:, c], y[:, c])
            yv, x, _ = pr_curve(s[:, c], y[:, c])
        values.append(value)
        if np.isnan(value) or c not in drawn:
            continue  # undefined: no positives (or negatives) for this class
        if few:
            ax.plot(x.numpy(), yv.numpy(), lw=1.5,
                    label=f'{_short(names[c])} ({value:.3f})',
                    drawstyle='steps-post' if kind == 'pr' else 'default')
        else:
            ax.plot(x.numpy(), yv.numpy(), lw=0.6, color='0.6', alpha=0.35,
                    drawstyle='steps-post' if kind == 'pr' else 'default')
    # micro-average: every (sample, class) pair as one binary decision
    flat_s, flat_y = s.reshape(-1), y.reshape(-1)
    sampled = flat_s.size > MAX_MICRO_PAIRS
    if sampled:  # a fixed random subset keeps it cheap
        keep = np.random.default_rng(0).choice(
            flat_s.size, MAX_MICRO_PAIRS, replace=False)
        flat_s, flat_y = flat_s[keep], flat_y[keep]
    if kind == 'roc':
        micro = binary_auroc(flat_s, flat_y)
        x, yv, _ = roc_curve(flat_s, flat_y)
        ax.plot([0, 1], [0, 1], ls='--', lw=1, color='0.5', label='chance')
    else:
        micro = average_precision(flat_s, flat_y)
        yv, x, _ = pr_curve(flat_s, flat_y)
    if not np.isnan(micro) and (not few or n > 2):
        ax.plot(x.numpy(), yv.numpy(), lw=2.5, color='black',
                label=f'micro-average ({micro:.3f}'
                + (', sampled pairs)' if sampled else ')'),
                drawstyle='steps-post' if kind == 'pr' else 'default')
    defined = [v for v in values if not np.isnan(v)]
    macro = float(np.mean(defined)) if defined else float('nan')
    metric = 'AUROC' if kind == 'roc' else 'AP'
    skipped = n - len(defined)
    ax.set_title(title or (
        f'{"ROC" if kind == "roc" else "Precision-recall"} curves, one-vs-rest'
        f' ({n} classes, macro {metric} {macro:.3f}' +
        (f', {skipped} undefined' if skipped else '') + ')'))
    if kind == 'roc':
        ax.set_xlabel('False positive rate')
        ax.set_ylabel('True positive rate')
    else:
        ax.set_xlabel('Recall')
        ax.set_ylabel('Precision')
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right' if kind == 'roc' else 'lower left',
              fontsize=8, title=f'class ({metric})' if few else None)
    return _save(fig, path)


def plot_roc_curves(scores: ArrayLike,
                    labels: ArrayLike,
                    classes: Optional[Sequence[str]],
                    path: str,
                    title: Optional[str] = None) -> str:
    """Draw one-vs-rest ROC curves (with per-class AUROC) and the micro mean.

    Args:
        scores (Tensor | ndarray): ``(N, C)`` class scores.
        labels (Tensor | ndarray): ``(N,)`` true indices or ``(N, C)``
            indicator matrix (multi-label).
        classes (Sequence[str], optional): Class names.
        path (str): Output PNG file.
        title (str, optional): Figure title.

    Returns:
        str: ``path``.
    """
    return _plot_curves(scores, labels, classes, path, 'roc', title)


def plot_pr_curves(scores: ArrayLike,
                   labels: ArrayLike,
                   classes: Optional[Sequence[str]],
                   path: str,
                   title: Optional[str] = None) -> str:
    """Draw one-vs-rest precision-recall curves (with per-class AP).

    Args:
        scores (Tensor | ndarray): ``(N, C)`` class scores.
        labels (Tensor | ndarray): ``(N,)`` true indices or ``(N, C)``
            indicator matrix (multi-label).
        classes (Sequence[str], optional): Class names.
        path (str): Output PNG file.
        title (str, optional): Figure title.

    Returns:
        str: ``path``.
    """
    return _plot_curves(scores, labels, classes, path, 'pr', title)
