"""Training curves from mmengine's scalar log (``vis_data/scalars.json``)."""
import json
import math
import os
import os.path as osp
from numbers import Number
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

# bookkeeping keys that are not curves
_SKIP_KEYS = {'step', 'epoch', 'iter', 'time', 'data_time', 'memory', 'eta'}


def load_scalars(path: str) -> List[dict]:
    """Read a JSON-lines scalar log, one dict per line.

    Args:
        path (str): ``scalars.json`` (or the ``<timestamp>.json``) written by
            mmengine's ``LocalVisBackend``.

    Returns:
        list[dict]: The records; blank or truncated lines (a run that is
        still writing) are skipped.
    """
    records = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def _is_number(value) -> bool:
    return (isinstance(value, Number) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def is_lr_key(key: str) -> bool:
    """Learning-rate scalars: ``lr``, ``*lr`` and per-group ``lr/<group>``."""
    return key == 'lr' or key.endswith('lr') or key.startswith('lr/')


def is_train_record(record: dict) -> bool:
    """Whether a scalar record was logged during training (it has the
    iteration, a learning rate or a loss) rather than by an evaluation."""
    return 'iter' in record or any(
        is_lr_key(k) or 'loss' in k for k in record)


def split_records(records: Sequence[dict]) -> Tuple[Dict[str, list], Dict[
        str, list], Dict[str, list], str]:
    """Group a scalar log into loss, learning-rate and evaluation series.

    A record with a loss or learning-rate key is a training record (x: its
    ``step``, i.e. the iteration); any other record holds evaluation metrics
    (x: its ``step``, the epoch or the iteration depending on
    ``LoggerHook.log_metric_by_epoch``).

    Returns:
        tuple: ``(losses, lrs, metrics, eval_x_label)``; each series dict maps
        a key to a list of ``(x, value)`` pairs.
    """
    losses: Dict[str, list] = {}
    lrs: Dict[str, list] = {}
    metrics: Dict[str, list] = {}
    max_epoch, has_epoch = 0.0, False
    for i, record in enumerate(records):
        train = is_train_record(record)
        x = record.get('step', record.get('iter', i))
        if train and _is_number(record.get('epoch')):
            has_epoch = True
            max_epoch = max(max_epoch, float(record['epoch']))
        for key, value in record.items():
            if key in _SKIP_KEYS or not _is_number(value):
                continue
            if train:
                target = lrs if is_lr_key(key) else (
                    losses if 'loss' in key else metrics)
                if target is metrics:
                    continue  # e.g. grad_norm: not a curve we draw
            else:
                target = metrics
            target.setdefault(key, []).append((float(x), float(value)))
    eval_steps = [x for series in metrics.values() for x, _ in series]
    by_epoch = has_epoch and eval_steps and max(eval_steps) <= max_epoch
    return losses, lrs, metrics, 'epoch' if by_epoch else 'iteration'


def _smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    out, last = np.empty_like(values), values[0]
    for i, v in enumerate(values):
        last = weight * last + (1 - weight) * v
        out[i] = last
    return out


def plot_training_curves(source: Union[str, Sequence[dict]],
                         out_path: str,
                         title: str = 'Training curves') -> str:
    """Draw loss, learning rate and validation metrics into one PNG.

    Args:
        source (str | Sequence[dict]): Path of mmengine's
            ``vis_data/scalars.json`` (JSON lines with ``loss``, ``lr``,
            ``step``, ``epoch`` ... and validation metrics with ``step``) or
            the already loaded records.
        out_path (str): Output PNG file.
        title (str): Figure title.

    Returns:
        str: ``out_path``.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        ValueError: Nothing in the log can be drawn.
    """
    if isinstance(source, (str, os.PathLike)):
        if not osp.isfile(source):
            raise FileNotFoundError(
                f'No scalar log at {source}; mmengine writes it to '
                '<work_dir>/<timestamp>/vis_data/scalars.json when the '
                "visualizer has a LocalVisBackend.")
        records = load_scalars(str(source))
    else:
        records = list(source)
    losses, lrs, metrics, eval_x = split_records(records)
    panels = [(name, series) for name, series in (
        ('loss', losses), ('learning rate', lrs),
        ('validation metrics', metrics)) if series]
    if not panels:
        raise ValueError(
            f'No loss, learning-rate or metric values in {len(records)} '
            'scalar records; nothing to plot.')

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.5 * len(panels), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    for idx, (name, series) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), idx)
        for key, points in sorted(series.items()):
            xs = np.array([p[0] for p in points])
            ys = np.array([p[1] for p in points])
            if name == 'loss' and len(ys) > 50:
                line, = ax.plot(xs, ys, lw=0.8, alpha=0.3)
                ax.plot(xs, _smooth(ys), lw=1.8, color=line.get_color(),
                        label=f'{key} (smoothed)')
            else:
                ax.plot(xs, ys, lw=1.5, label=key,
                        marker='o' if len(xs) <= 30 else None, ms=3)
        ax.set_xlabel(eval_x if name == 'validation metrics' else 'iteration')
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if name == 'learning rate':
            ax.ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
        ax.legend(fontsize=7, loc='best')
    fig.suptitle(title)
    out_path = str(out_path)
    if osp.dirname(out_path):
        os.makedirs(osp.dirname(out_path), exist_ok=True)
    fig.savefig(out_path, format='png', bbox_inches='tight')
    return out_path
