"""Predict with a trained classifier or segmentor on images; write the results.

The task follows the model: a segmentor (``DINOv3Segmentor``, or any model
with a ``decode_head``) writes masks, otherwise class predictions go to a CSV.

Classification (``--out``: a CSV file, default ``predictions.csv``)::

    python tools/infer.py CONFIG CHECKPOINT path/to/images --out preds.csv

Segmentation (``--out``: a directory, default ``seg_predictions``)::

    python tools/infer.py CONFIG CHECKPOINT path/to/images --out seg_preds

writes ``seg_preds/masks/<relative path>.png`` (palette PNGs: coloured in a
viewer, class indices when read back), ``seg_preds/overlays/<relative
path>.png`` (masks blended over the images; ``--no-overlay`` skips them) and
``seg_preds/summary.csv`` (per image, the fraction of pixels of each class).

SOURCE is an image file, a folder (searched recursively) or a text file with
one image path per line.
"""
import argparse
import os.path as osp
import sys

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)
from dinov3_mm.apis import inference_model, init_model
from dinov3_mm.apis.inference import list_images, write_predictions_csv
from dinov3_mm.apis.seg_inference import segmentor_meta, write_seg_outputs
from dinov3_mm.utils.checkpoint_io import CheckpointError

DEFAULT_OUT = dict(cls='predictions.csv', seg='seg_predictions')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('source', help='image file, folder, or text file '
                        'with one image path per line')
    parser.add_argument(
        '--out', help='classification: CSV file (default '
        f'{DEFAULT_OUT["cls"]}); segmentation: output directory (default '
        f'{DEFAULT_OUT["seg"]})')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='images per forward pass (default 8 for '
                        'classification, 4 for segmentation)')
    parser.add_argument('--no-overlay', action='store_true',
                        help='segmentation: do not write overlays')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='segmentation: overlay opacity (default 0.5)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        # bad checkpoint, source or image: the message names the file
        print(f'error: {exc}', file=sys.stderr)
        return 1


def run(args) -> int:
    paths = list_images(args.source)
    model = init_model(args.config, args.checkpoint, device=args.device)
    results = inference_model(model, paths, batch_size=args.batch_size)
    write = write_masks if 'mask' in results[0] else write_csv
    write(args, model, paths, results)
    return 0


def write_csv(args, model, paths, predictions) -> None:
    """Class predictions: one CSV row per image."""
    out = args.out or DEFAULT_OUT['cls']
    classes = model.dataset_meta.get('classes')
    write_predictions_csv(paths, predictions, out, classes)
    print(f'Wrote {len(paths)} predictions to {out}')


def write_masks(args, model, paths, results) -> None:
    """Segmentation: masks, overlays and a summary CSV in a directory."""
    out = args.out or DEFAULT_OUT['seg']
    classes, palette = segmentor_meta(model)
    source_root = args.source if osp.isdir(args.source) else None
    written = write_seg_outputs(
        paths, results, out, palette=palette, classes=classes,
        overlay=not args.no_overlay, source_root=source_root,
        alpha=args.alpha)
    print(f'Wrote {len(paths)} masks to {osp.join(out, "masks")}' +
          (f' and overlays to {osp.join(out, "overlays")}'
           if written['overlays'] else '') +
          f'; summary: {written["summary"]}')


if __name__ == '__main__':
    sys.exit(main())
