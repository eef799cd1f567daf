"""Curves of any logged scalar, from one or more runs, in one PNG.

mmengine writes every logged scalar as a JSON line to
``<work_dir>/<timestamp>/vis_data/scalars.json`` (and the same lines to
``<timestamp>.json`` next to it): training records carry ``iter``/``lr`` and
the loss terms, evaluation records the metrics; ``step`` is the x value.
"""
import glob
import os
import os.path as osp
from collections import defaultdict
from numbers import Number
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .curves import is_lr_key, is_train_record, load_scalars

Series = List[Tuple[float, float]]


def find_scalar_logs(path: str) -> List[str]:
    """The scalar logs a run path points at, oldest first.

    Args:
        path (str): A ``.json`` scalar log, a ``vis_data`` folder, a
            ``<timestamp>`` folder or a work dir holding timestamp folders.

    Returns:
        list[str]: ``scalars.json`` files (or the given file).

    Raises:
        FileNotFoundError: Nothing of the kind is there.
    """
    if osp.isfile(path):
        return [path]
    patterns = ('scalars.json', 'vis_data/scalars.json',
                '*/vis_data/scalars.json')
    for pattern in patterns:
        found = sorted(glob.glob(osp.join(glob.escape(path), pattern)))
        if found:
            return found
    raise FileNotFoundError(
        f'No scalar log in {path}: give a work dir, a <timestamp> folder or '
        'a vis_data/scalars.json file (mmengine writes it when the '
        'visualizer has a LocalVisBackend).')


def load_run(path: str, keys: Sequence[str] = ()) -> List[dict]:
    """The scalar records of a run.

    A work dir with several timestamp folders (training, then tests) is
    read from its newest log that has training records and, when ``keys``
    are given, at least one of them; else its newest log.
    """
    logs = find_scalar_logs(path)
    fallback = None
    for log in reversed(logs):
        records = load_scalars(log)
        if fallback is None:
            fallback = records
        has_train = any(is_train_record(r) for r in records)
        has_key = not keys or any(k in r for r in records for k in keys)
        if has_train and has_key:
            return records
    return fallback or []


def _number(value) -> Optional[float]:
    if isinstance(value, Number) and not isinstance(value, bool):
        value = float(value)
        return value if np.isfinite(value) else None
    return None


def scalar_series(records: Sequence[dict], key: str) -> Tuple[Series, str]:
    """``(step, value)`` pairs of ``key`` and the x-axis name.

    The x value is the record's ``step``: the iteration for training
    scalars; for evaluation metrics the epoch (epoch-based runs) or the
    iteration.
    """
    points, train, epochs = [], False, False
    for i, record in enumerate(records):
        value = _number(record.get(key))
        if value is None:
            continue
        train = train or is_train_record(record)
        epochs = epochs or 'epoch' in record
        points.append((float(record.get('step', record.get('iter', i))),
                       value))
    if train:
        return points, 'iteration'
    max_epoch = max((r['epoch'] for r in records
                     if is_train_record(r) and _number(r.get('epoch'))),
                    default=None)
    by_epoch = (max_epoch is not None and points
                and max(x for x, _ in points) <= max_epoch)
    return points, 'epoch' if by_epoch else 'step'


def available_keys(records: Sequence[dict]) -> List[str]:
    """Numeric keys of the records, ``step`` excluded, sorted."""
    return sorted({k for r in records for k, v in r.items()
                   if k != 'step' and _number(v) is not None})


def plot_scalar_curves(runs: Dict[str, Sequence[dict]],
                       keys: Sequence[str],
                       out_path: str,
                       title: Optional[str] = None) -> str:
    """One panel per key, one line per run, saved as a PNG.

    Args:
        runs (dict): Legend label -> scalar records of that run.
        keys (sequence[str]): Logged scalars to plot, e.g. ``('loss', 'lr',
            'accuracy/top1')``.
        out_path (str): Output ``.png`` file (folders are created).
        title (str, optional): Figure title.

    Returns:
        str: ``out_path``.

    Raises:
        KeyError: A key is logged by none of the runs (the message lists
            the keys that are).
    """
    series = {}
    for key in keys:
        per_run = {label: scalar_series(records, key)
                   for label, records in runs.items()}
        if not any(points for points, _ in per_run.values()):
            known = sorted({k for r in runs.values()
                            for k in available_keys(r)})
            raise KeyError(f'{key!r} is not logged by '
                           f'{"any of the runs" if len(runs) > 1 else "the run"}'
                           f'; logged scalars: {", ".join(known) or "none"}')
        series[key] = per_run

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.5 * len(keys), 4.2), dpi=100)
    FigureCanvasAgg(fig)
    for idx, key in enumerate(keys, start=1):
        ax = fig.add_subplot(1, len(keys), idx)
        x_label = 'step'
        for label, (points, x_name) in series[key].items():
            if not points:
                continue
            x_label = x_name
            xs, ys = zip(*points)
            ax.plot(xs, ys, lw=1.5, label=label,
                    marker='o' if len(xs) <= 30 else None, ms=3)
        ax.set_xlabel(x_label)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        if is_lr_key(key):
            ax.ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
        ax.legend(fontsize=7, loc='best')
    if title:
        fig.suptitle(title)
    out_path = str(out_path)
    if osp.dirname(out_path):
        os.makedirs(osp.dirname(out_path), exist_ok=True)
    fig.savefig(out_path, format='png', bbox_inches='tight')
    return out_path


def epoch_times(records: Sequence[dict],
                include_outliers: bool = False) -> Dict[int, List[float]]:
    """Logged ``time`` (seconds per iteration, averaged by mmengine over
    the logging interval) of the training records, grouped by epoch.

    Iteration-based runs, whose records have no epoch, form one group
    (epoch 0). Without ``include_outliers`` the first record of each epoch
    with more than one record is dropped.
    """
    times: Dict[int, List[float]] = defaultdict(list)
    for record in records:
        if is_train_record(record) and isinstance(record.get('time'),
                                                  (int, float)):
            times[int(record.get('epoch', 0))].append(float(record['time']))
    if not include_outliers:
        times = {e: t[1:] if len(t) > 1 else t for e, t in times.items()}
    return dict(sorted(times.items()))


def train_time_report(run: str, records: Sequence[dict],
                      include_outliers: bool = False) -> str:
    """mmdet-style summary: slowest and fastest epoch, their spread and
    the average iteration time.

    Raises:
        ValueError: ``records`` hold no training iteration time.
    """
    times = epoch_times(records, include_outliers)
    if not times:
        raise ValueError(f'{run} logged no training iteration times (`time` '
                        'of the training records); is it a training run?')
    means = {epoch: sum(t) / len(t) for epoch, t in times.items()}
    all_times = [v for t in times.values() for v in t]
    lines = [f'-----Analyze train time of {run}-----']
    if len(means) > 1 or 0 not in means:
        slowest = max(means, key=means.get)
        fastest = min(means, key=means.get)
        values = list(means.values())
        centre = sum(values) / len(values)
        std = (sum((v - centre) ** 2 for v in values) / len(values)) ** 0.5
        lines += [
            f'slowest epoch {slowest}, average time is '
            f'{means[slowest]:.4f} s/iter',
            f'fastest epoch {fastest}, average time is '
            f'{means[fastest]:.4f} s/iter',
            f'time std over epochs is {std:.4f}',
        ]
    lines.append(f'average iter time: {sum(all_times) / len(all_times):.4f} '
                 's/iter')
    return '\n'.join(lines)
