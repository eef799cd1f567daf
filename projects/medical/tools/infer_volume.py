r"""Segment whole volumes slice by slice; write NIfTI label maps (and Dice).

    python projects/medical/tools/infer_volume.py CONFIG CHECKPOINT INPUT \
        [--gt GT] [--out DIR] [--batch-size 8] [--device cpu]

INPUT is a .nii / .nii.gz file, a folder holding one DICOM series, or a
folder of NIfTI files and / or DICOM series sub-folders. Slices are cut
along the config's test dataset ``axis`` (after its ``orientation``, with
its 2.5D ``context``), go through its test pipeline in batches of
``--batch-size`` and are stacked back. ``<out>/<case>.nii.gz`` (``.nii``
for a ``.nii`` input) keeps the input's affine and header (uint8 labels, or
int16 beyond 255 classes). With ``--gt`` (a volume, or a folder of volumes
named like the inputs) the Dice of every class per volume is printed and
written to ``<out>/dice.csv``.

Slices are resized as in training: when the config's test resize differs
from the training size (read from the checkpoint's saved config, else the
config's train pipeline), inference runs at the training size and a note
names both (``--keep-test-size`` keeps the test size, with a warning).
Labels are returned at each volume's own resolution.

Unreadable volumes: every input's header is read before the model is
loaded; a missing or corrupt one stops the run at once, naming it. Voxel
data that fails later (e.g. a truncated .nii.gz) stops the run after the
volumes before it are written. ``--skip-unreadable`` skips such volumes
instead, prints them and lists them in ``<out>/skipped.csv``. Progress bars
(volumes, slice batches) show on a terminal or with ``DINOV3_MM_PROGRESS=1``.
"""
import argparse
import os.path as osp
import sys

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)
from dinov3_mm.apis import CheckpointError
from dinov3_mm.engine import CfgOptionsAction

import dinov3_mm_medical.components  # noqa: F401  (registers the plugin)
from dinov3_mm_medical.inference import (UnreadableVolumeError,
                                         run_volume_inference)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('input', help='NIfTI file, DICOM series folder, or '
                        'folder of volumes')
    parser.add_argument('--gt', help='ground-truth volume, or folder of '
                        'volumes named like the inputs')
    parser.add_argument('--out', default='volume_predictions',
                        help='output folder (default volume_predictions)')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='slices per forward pass (default 8)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries')
    parser.add_argument('--skip-unreadable', action='store_true',
                        help='skip volumes that cannot be read (listed on '
                        'stderr and in <out>/skipped.csv)')
    parser.add_argument('--keep-test-size', action='store_true',
                        help='infer at the config\'s test resize even when '
                        'the model was trained at another size (warns)')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run_volume_inference(
            args.config, args.checkpoint, args.input, args.out, gt=args.gt,
            batch_size=args.batch_size, device=args.device,
            cfg_options=args.cfg_options,
            skip_unreadable=args.skip_unreadable,
            keep_test_size=args.keep_test_size,
            log=lambda line: print(line, file=sys.stderr))
    except UnreadableVolumeError as exc:
        if args.debug:
            raise
        done = (f'the {len(exc.done)} volume(s) before it are in '
                f'{osp.abspath(args.out)}' if exc.done else
                'no volume was written')
        print(f'error: {exc.reason}\n{done}; pass --skip-unreadable to '
              'segment the others and list the unreadable ones.',
              file=sys.stderr)
        return 1
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        # missing input, ground truth off the grid, wrong checkpoint: the
        # message names the file
        if args.debug:
            raise
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'Wrote {len(result["outputs"])} label volume(s) to '
          f'{osp.abspath(args.out)}')
    if result['table'] is not None:
        print('Dice per class and volume:')
        print(result['table'])
        print(f'Dice CSV: {result["dice_csv"]}')
    if result['skipped']:
        print(f'Skipped {len(result["skipped"])} unreadable volume(s), '
              f'listed in {result["skipped_csv"]}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
