"""Plot logged scalars of one or more runs, or summarise their training time.

Each RUN is a work dir, a ``<timestamp>`` folder or a ``vis_data/scalars.json``
(mmengine's scalar log; ``<timestamp>.json`` works too)::

    python tools/analysis/analyze_logs.py plot_curve work_dirs/demo \\
        --keys loss lr accuracy/top1 --out work_dirs/demo/curves.png
    python tools/analysis/analyze_logs.py plot_curve work_dirs/a work_dirs/b \\
        --keys loss --legend baseline lora --out compare.png
    python tools/analysis/analyze_logs.py cal_train_time work_dirs/demo
"""
import argparse
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Sequence

from dinov3_mm.utils.cli import UserError, add_debug_argument, cli_main
from dinov3_mm.visualization.log_curves import (is_train_record, load_run,
                                                plot_scalar_curves)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Analyse mmengine scalar logs of dinov3_mm runs')
    add_debug_argument(parser)
    sub = parser.add_subparsers(dest='task', required=True)

    plot = sub.add_parser('plot_curve', help='plot logged scalars to a PNG')
    plot.add_argument('runs', nargs='+', metavar='RUN',
                      help='work dir, timestamp folder or scalars.json')
    plot.add_argument('--keys', nargs='+', default=['loss'],
                      help='logged scalars to plot (default: loss), e.g. '
                      'loss lr accuracy/top1')
    plot.add_argument('--legend', nargs='+',
                      help='one label per run (default: the run paths)')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--out', default='curves.png',
                      help='output PNG (default: curves.png)')
    add_debug_argument(plot)

    timing = sub.add_parser('cal_train_time',
                            help='average iteration time per epoch')
    timing.add_argument('runs', nargs='+', metavar='RUN',
                        help='work dir, timestamp folder or scalars.json')
    timing.add_argument('--include-outliers', action='store_true',
                        help='keep the first logged record of each epoch '
                        '(start-up and data loader warm-up)')
    add_debug_argument(timing)
    return parser.parse_args(argv)


def _load(run: str, keys: Sequence[str] = ()) -> List[dict]:
    try:
        records = load_run(run, keys)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from exc
    if not records:
        raise UserError(f'The scalar log of {run} is empty; has the run '
                        'logged anything yet?')
    return records


def plot_curve(args: argparse.Namespace) -> None:
    """Write the curves of ``args.keys`` of every run to ``args.out``."""
    legend = args.legend or [osp.normpath(run) for run in args.runs]
    if len(legend) != len(args.runs):
        raise UserError(f'--legend has {len(legend)} labels for '
                        f'{len(args.runs)} runs; give one label per run.')
    runs = {label: _load(run, args.keys)
            for label, run in zip(legend, args.runs)}
    if not args.out.lower().endswith('.png'):
        raise UserError(f'--out {args.out}: the curves are written as PNG; '
                        'name a .png file.')
    try:
        out = plot_scalar_curves(runs, args.keys, args.out, args.title)
    except KeyError as exc:
        raise UserError(exc.args[0]) from exc
    print(f'Wrote {", ".join(args.keys)} of {len(runs)} run(s) to {out}')


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
    the average iteration time."""
    times = epoch_times(records, include_outliers)
    if not times:
        raise UserError(f'{run} logged no training iteration times (`time` '
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


def cal_train_time(args: argparse.Namespace) -> None:
    """Print :func:`train_time_report` of every run."""
    for run in args.runs:
        print(train_time_report(run, _load(run, ('time', )),
                                args.include_outliers))


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.task == 'plot_curve':
        plot_curve(args)
    else:
        cal_train_time(args)


if __name__ == '__main__':
    cli_main(main)
