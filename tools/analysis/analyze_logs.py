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
from typing import List, Sequence

from dinov3_mm.utils.cli import UserError, add_debug_argument, cli_main
from dinov3_mm.visualization.log_curves import (load_run, plot_scalar_curves,
                                                train_time_report)


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


def cal_train_time(args: argparse.Namespace) -> None:
    """Print :func:`train_time_report` of every run."""
    for run in args.runs:
        try:
            report = train_time_report(run, _load(run, ('time', )),
                                       args.include_outliers)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        print(report)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.task == 'plot_curve':
        plot_curve(args)
    else:
        cal_train_time(args)


if __name__ == '__main__':
    cli_main(main)
