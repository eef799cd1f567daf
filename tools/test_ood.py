"""Out-of-distribution detection of a trained classifier.

Scores the config's test set (in-distribution) against folders of other
images with max softmax probability (msp), max logit, energy, k-NN distance
and Mahalanobis distance on the model's pooled features (the reference is
the config's training set); writes AUROC, FPR at 95 % TPR and AUPR per OOD
folder and score (ood_results.json / .md), every image's scores
(ood_scores.csv) and a histogram PNG per score.

Examples::

    python tools/test_ood.py CONFIG CHECKPOINT --ood data/other_images
    python tools/test_ood.py CONFIG CHECKPOINT --ood a/ b/ --scores msp knn \\
        --k 10 --write-threshold msp

``--write-threshold msp`` also writes ``<work-dir>/ood_threshold.json``:
``tools/deploy.py --ood-threshold`` puts it into the served
postprocessing, which then returns an ``OOD`` flag per image. Only msp can
be served (the exported model returns probabilities).

Unreadable OOD images (empty, not an image, corrupt, truncated) stop the run
naming the file; ``--skip-unreadable`` scores the others and lists them in
``<work-dir>/ood_skipped.csv``. A progress bar is shown on a terminal (or
with ``DINOV3_MM_PROGRESS=1``).
"""
import argparse
import os.path as osp
import sys

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)
from dinov3_mm.apis.ood import (DEPLOYABLE_SCORES, THRESHOLD_FILE, run_ood,
                                write_ood_threshold)
from dinov3_mm.apis.unreadable import UnreadableImageError
from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.evaluation.functional.ood import OOD_SCORES
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 default_work_dir, require_checkpoint,
                                 require_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--ood', nargs='+', required=True, metavar='FOLDER',
                        help='folders of out-of-distribution images '
                        '(searched recursively)')
    parser.add_argument('--scores', nargs='+', default=list(OOD_SCORES),
                        choices=OOD_SCORES, metavar='SCORE',
                        help=f'scores to compute (default: all of '
                        f'{", ".join(OOD_SCORES)})')
    parser.add_argument('--k', type=int, default=10,
                        help='neighbour of the k-NN score (default 10)')
    parser.add_argument('--tpr', type=float, default=0.95,
                        help='in-distribution share kept by the thresholds '
                        'and the FPR figure (default 0.95)')
    parser.add_argument('--work-dir', help='report folder (default: '
                        'work_dirs/<config name>/ood)')
    parser.add_argument('--batch-size', type=int,
                        help="default: the config's test batch size")
    parser.add_argument('--num-workers', type=int,
                        help="default: the config's test dataloader's")
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--write-threshold', choices=DEPLOYABLE_SCORES, metavar='SCORE',
        help=f'also write <work-dir>/{THRESHOLD_FILE} with the threshold of '
        f'SCORE ({", ".join(DEPLOYABLE_SCORES)}) that keeps --tpr of the '
        'in-distribution images, for tools/deploy.py --ood-threshold')
    parser.add_argument(
        '--skip-unreadable', action='store_true',
        help='skip unreadable OOD images (listed in ood_skipped.csv) '
        'instead of stopping')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require_config(args.config)
    require_checkpoint(args.checkpoint)
    work_dir = args.work_dir or default_work_dir(args.config, 'ood')
    try:
        results = run_ood(
            args.config, args.checkpoint, args.ood, work_dir, args.scores,
            args.k, args.tpr, args.batch_size, args.num_workers, args.device,
            args.skip_unreadable, args.cfg_options)
    except UnreadableImageError as exc:
        raise UserError(f'{exc}\nPass --skip-unreadable to score the other '
                        'images and list the unreadable ones.') from exc
    for path, reason in results.get('skipped', []):
        print(f'skipped {path}: {reason}', file=sys.stderr)
    if results.get('skipped'):
        print(f'Skipped {len(results["skipped"])} unreadable image(s), '
              f'listed in {results["skipped_list"]}', file=sys.stderr)
    fpr = results['fpr_key']
    for folder, entry in results['ood'].items():
        print(f'{folder}: {entry["num_images"]} OOD images vs '
              f'{results["num_id"]} in-distribution')
        for score, m in entry['metrics'].items():
            print(f'  {score:<12} AUROC {m["auroc"]:6.2f}  {fpr} '
                  f'{m[fpr]:6.2f}  AUPR-In {m["aupr_in"]:6.2f}  '
                  f'AUPR-Out {m["aupr_out"]:6.2f}')
    files = results['files']
    print(f'Report: {files["markdown"]}, {files["json"]}; per-image '
          f'scores: {files["scores"]}; histograms: '
          f'{", ".join(files["histograms"].values())}')
    if args.write_threshold:
        path = osp.join(work_dir, THRESHOLD_FILE)
        entry = write_ood_threshold(results, args.write_threshold, path)
        print(f'Wrote {path}: {entry["score"]} < {entry["threshold"]:.6g} '
              'flags an image as OOD (tools/deploy.py --ood-threshold '
              f'{path})')
    return 0


if __name__ == '__main__':
    # bad checkpoint, folder or image: the message names the file
    cli_main(main, user_errors=(CheckpointError, FileNotFoundError,
                                ValueError))
