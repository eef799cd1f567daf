"""Robustness of a trained model to image corruptions and adversarial noise.

Runs the config's test set clean and under the ImageNet-C corruptions
(noise, blur, weather, digital) at severities 1-5, corrupted in the
dataloader workers; reports per corruption and severity, the mean under
corruption, relative robustness and, against a baseline's robustness.json,
the corruption errors and mCE (robustness.json/.md, robustness_heatmap.png).

Examples::

    python tools/test_robustness.py CONFIG CHECKPOINT
    python tools/test_robustness.py CONFIG CHECKPOINT --corruptions \
        gaussian_noise fog --severities 1 3 5 --baseline other/robustness.json
    python tools/test_robustness.py CONFIG CHECKPOINT --corruptions \
        --adversarial fgsm pgd --epsilons 0.01 0.03
"""
import argparse
import os.path as osp

import dinov3_mm  # noqa: F401
from dinov3_mm.apis.robustness import run_robustness
from dinov3_mm.datasets.transforms.corrupt import CORRUPTIONS
from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 default_work_dir, require_checkpoint,
                                 require_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--corruptions', nargs='*', default=list(CORRUPTIONS),
                        metavar='NAME', help='corruptions to run (default: '
                        'all 15; none with an empty list)')
    parser.add_argument('--severities', nargs='+', type=int,
                        default=[1, 2, 3, 4, 5])
    parser.add_argument('--baseline', metavar='JSON',
                        help="a baseline model's robustness.json: adds the "
                        'corruption errors and mCE')
    parser.add_argument('--adversarial', nargs='+', default=[],
                        choices=['fgsm', 'pgd'])
    parser.add_argument('--epsilons', nargs='+', type=float,
                        default=[0.01, 0.03], help='attack radii in the '
                        'normalised input space')
    parser.add_argument('--pgd-steps', type=int, default=10)
    parser.add_argument('--work-dir', help='report folder (default: '
                        'work_dirs/<config name>/robustness)')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--num-workers', type=int, default=2,
                        help='dataloader workers, where the corruptions run')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require_config(args.config)
    require_checkpoint(args.checkpoint)
    unknown = [c for c in args.corruptions if c not in CORRUPTIONS]
    if unknown:
        raise UserError(f'unknown corruption(s) {", ".join(unknown)}; valid: '
                        f'{", ".join(CORRUPTIONS)}', exit_code=2)
    if args.baseline and not osp.isfile(args.baseline):
        raise UserError(f'--baseline {args.baseline} does not exist',
                        exit_code=2)
    work_dir = args.work_dir or default_work_dir(args.config, 'robustness')
    report = run_robustness(
        args.config, args.checkpoint, work_dir, args.corruptions,
        args.severities, args.baseline, args.adversarial, args.epsilons,
        args.pgd_steps, args.batch_size, args.num_workers, args.seed,
        args.cfg_options)
    summary = report['summary']
    print(f'{report["metric"]}: clean {report["clean"]:.2f}, mean under '
          f'corruption {summary["mean_corrupted"]:.2f}, relative robustness '
          f'{summary["relative_robustness"]:.3f}' +
          (f', mCE {summary["mce"]:.1f} %' if 'mce' in summary else ''))
    for attack, row in report.get('adversarial', {}).items():
        print(f'{attack}: ' + ', '.join(f'eps {e}: {a:.2f}'
                                        for e, a in row.items()))
    print(f'Report: {osp.join(work_dir, "robustness.md")}, '
          f'{osp.join(work_dir, "robustness_heatmap.png")}')
    return 0


if __name__ == '__main__':
    cli_main(main, user_errors=(CheckpointError, FileNotFoundError))
