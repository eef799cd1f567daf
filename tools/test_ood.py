"""Out-of-distribution detection of a trained classifier.

Scores the config's test set (in-distribution) against folders of other
images with max softmax probability, max logit, energy, k-NN distance and
Mahalanobis distance on the model's features; writes AUROC, FPR at 95 % TPR
and AUPR per score (ood_results.json/.md) and score histograms (PNG).

Examples::

    python tools/test_ood.py CONFIG CHECKPOINT --ood data/other_images
    python tools/test_ood.py CONFIG CHECKPOINT --ood a/ b/ --scores msp knn \
        --write-threshold msp
"""
import argparse
import os.path as osp

import dinov3_mm  # noqa: F401
from dinov3_mm.apis.ood import DEPLOYABLE_SCORES, run_ood, write_ood_threshold
from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.evaluation.functional.ood import OOD_SCORES
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.cli import (add_debug_argument, cli_main,
                                 require_checkpoint)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--ood', nargs='+', required=True, metavar='FOLDER',
                        help='folders of out-of-distribution images')
    parser.add_argument('--scores', nargs='+', default=list(OOD_SCORES),
                        choices=OOD_SCORES)
    parser.add_argument('--k', type=int, default=10,
                        help='neighbour of the k-NN score (default 10)')
    parser.add_argument('--tpr', type=float, default=0.95,
                        help='in-distribution share kept by the thresholds')
    parser.add_argument('--work-dir', help='report folder (default: '
                        'work_dirs/<config name>/ood)')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--num-workers', type=int)
    parser.add_argument(
        '--write-threshold', choices=DEPLOYABLE_SCORES, metavar='SCORE',
        help='also write <work-dir>/ood_threshold.json for tools/deploy.py '
        '--ood-threshold (served models flag images below it as OOD)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require_checkpoint(args.checkpoint)
    work_dir = args.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0], 'ood')
    results = run_ood(args.config, args.checkpoint, args.ood, work_dir,
                      args.scores, args.k, args.tpr, args.batch_size,
                      args.num_workers, args.cfg_options)
    for folder, entry in results['ood'].items():
        print(f'OOD {folder} ({entry["num_images"]} images) vs '
              f'{results["num_id"]} in-distribution:')
        for score, metrics in entry['metrics'].items():
            print(f'  {score:12s} ' + '  '.join(
                f'{k} {v:.2f}' for k, v in metrics.items()))
    print(f'Report: {osp.join(work_dir, "ood_results.md")}, '
          f'{osp.join(work_dir, "ood_histograms.png")}')
    if args.write_threshold:
        path = osp.join(work_dir, 'ood_threshold.json')
        entry = write_ood_threshold(results, args.write_threshold, path)
        print(f'Wrote {path}: {entry["score"]} < {entry["threshold"]:.6g} '
              'flags an image as OOD')
    return 0


if __name__ == '__main__':
    cli_main(main, user_errors=(CheckpointError, FileNotFoundError,
                                ValueError))
