"""Predict with a trained classifier, segmentor or detector; write results.

The task follows the model: a segmentor (``DINOv3Segmentor``, or any model
with a ``decode_head``) writes masks, a detector (``DINOv3DETR``) drawn
pictures and COCO JSON, otherwise class predictions go to a CSV.

Classification (``--out``: a CSV file, default ``predictions.csv``)::

    python tools/infer.py CONFIG CHECKPOINT path/to/images --out preds.csv

Segmentation (``--out``: a directory, default ``seg_predictions``)::

    python tools/infer.py CONFIG CHECKPOINT path/to/images --out seg_preds

writes ``seg_preds/masks/<relative path>.png`` (palette PNGs: coloured in a
viewer, class indices when read back), ``seg_preds/overlays/<relative
path>.png`` (masks blended over the images; ``--no-overlay`` skips them) and
``seg_preds/summary.csv`` (per image, the fraction of pixels of each class).

Detection (``--out``: a directory, default ``det_predictions``)::

    python tools/infer.py CONFIG CHECKPOINT path/to/images --out det_preds

writes ``det_preds/vis/<relative path>.png`` (boxes, class names, scores and
masks of the detections scoring at least ``--score-thr``; ``--no-overlay``
skips them) and ``det_preds/predictions.json``: every detection (the top
``test_cfg.num_select`` per image) as a COCO file that
``pycocotools.coco.COCO`` loads (images with ids 1..N in order, scored
annotations with ``bbox`` [x, y, w, h], masks as compressed RLE
``segmentation``, category ids from the dataset's ``cat_ids``, else label + 1;
its ``annotations`` list is a ``COCO.loadRes`` result list).

SOURCE is an image file, a folder (searched recursively) or a text file with
one image path per line.

Unreadable images (missing, empty, not an image, corrupt or truncated): every
image's header is checked before the model is loaded, so a missing, empty or
non-image file stops the run at once, naming it. Truncated pixel data shows
only when decoding; then the results of the images before it are written
and the run stops, naming the file. ``--skip-unreadable`` instead predicts
all readable images, prints each skipped file and its reason on stderr and
lists them in ``skipped.csv`` (segmentation: ``<out>/skipped.csv``;
classification: ``<out stem>.skipped.csv`` beside the CSV).

A progress bar (images in batches, with an ETA) is shown on a terminal, or
with ``DINOV3_MM_PROGRESS=1``.

As ``tools/train.py`` does, the tool has glibc's malloc keep freed memory
(:func:`dinov3_mm.utils.malloc.retain_freed_memory`; ViT-S/16 inference on
the CPU 6-11 % faster); ``DINOV3_MM_MALLOC=default`` turns it off.
"""
import argparse
import os
import os.path as osp
import sys

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)
from dinov3_mm.apis import init_model
from dinov3_mm.apis.det_inference import (detector_meta, is_detector,
                                          write_det_outputs)
from dinov3_mm.apis.inference import list_images, write_predictions_csv
from dinov3_mm.apis.seg_inference import (is_segmentor, segmentor_meta,
                                          write_seg_outputs)
from dinov3_mm.apis.task_inference import predict_in_batches
from dinov3_mm.apis.unreadable import (Skipped, UnreadableImageError,
                                       describe_unreadable, header_problems,
                                       write_skipped_csv)
from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 require_checkpoint, require_config)
from dinov3_mm.utils.malloc import retain_freed_memory

DEFAULT_OUT = dict(cls='predictions.csv', seg='seg_predictions',
                   det='det_predictions')
DEFAULT_BATCH = dict(cls=8, seg=4, det=4)


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
        f'{DEFAULT_OUT["cls"]}); segmentation / detection: output '
        f'directory (default {DEFAULT_OUT["seg"]} / {DEFAULT_OUT["det"]})')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config entries, e.g. model.lora=None to load a '
        'merged LoRA checkpoint with its LoRA config')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='images per forward pass (default 8 for '
                        'classification, 4 for segmentation and detection)')
    parser.add_argument('--no-overlay', action='store_true',
                        help='segmentation / detection: do not write '
                        'overlays / pictures')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: draw detections scoring at least '
                        'this (default 0.3); the JSON keeps all')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='segmentation: overlay opacity (default 0.5)')
    parser.add_argument(
        '--skip-unreadable', action='store_true',
        help='skip missing, empty, corrupt or truncated images (listed on '
        'stderr and in skipped.csv) and predict the others')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require_config(args.config)
    require_checkpoint(args.checkpoint)
    retain_freed_memory()
    return run(args)


def run(args) -> int:
    paths = list_images(args.source, allow_missing=args.skip_unreadable)
    skipped = header_problems(paths)
    if skipped and not args.skip_unreadable:
        raise UserError(
            describe_unreadable(skipped) + '\nNothing was run: fix or remove '
            'them, or pass --skip-unreadable to predict the other images.')
    bad = {path for path, _ in skipped}
    readable = [path for path in paths if path not in bad]
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options)
    task = ('seg' if is_segmentor(model) else
            'det' if is_detector(model) else 'cls')
    out = args.out or DEFAULT_OUT[task]
    write = dict(seg=write_masks, det=write_detections,
                 cls=write_csv)[task]
    options = dict(mask_format='rle') if task == 'det' else {}
    batch_size = args.batch_size or DEFAULT_BATCH[task]
    if batch_size < 1:
        raise UserError(f'--batch-size {batch_size} must be at least 1.')
    done, results = [], []
    try:
        predict_in_batches(model, readable, batch_size, args.skip_unreadable,
                           done, results, skipped, **options)
    except UnreadableImageError as exc:
        kept = (f'Results for the {len(done)} images before it are in '
                f'{out}' if done else 'No image was predicted before it')
        if done:
            write(args, out, model, done, results)
        raise UserError(
            f'{exc}\n{kept}; pass --skip-unreadable to predict the others '
            'and list the unreadable ones.') from exc
    report_skipped(skipped, skipped_list_path(out, task))
    if not done:
        raise UserError(f'None of the {len(paths)} images could be read '
                        f'(listed in {skipped_list_path(out, task)}).')
    write(args, out, model, done, results)
    return 0


def skipped_list_path(out: str, task: str) -> str:
    """Where the skipped images are listed."""
    if task in ('seg', 'det'):
        return osp.join(out, 'skipped.csv')
    return osp.splitext(out)[0] + '.skipped.csv'


def report_skipped(skipped: Skipped, list_path: str) -> None:
    """Print the skipped images and list them in ``list_path`` (an old
    list from an earlier run is removed when none were skipped)."""
    if not skipped:
        if osp.isfile(list_path):
            os.remove(list_path)
        return
    for path, reason in skipped:
        print(f'skipped {path}: {reason}', file=sys.stderr)
    write_skipped_csv(skipped, list_path)
    print(f'Skipped {len(skipped)} unreadable image(s), listed in '
          f'{list_path}', file=sys.stderr)


def write_csv(args, out, model, paths, predictions) -> None:
    """Class predictions: one CSV row per image."""
    classes = model.dataset_meta.get('classes')
    write_predictions_csv(paths, predictions, out, classes)
    print(f'Wrote {len(paths)} predictions to {out}')


def write_masks(args, out, model, paths, results) -> None:
    """Segmentation: masks, overlays and a summary CSV in a directory."""
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


def write_detections(args, out, model, paths, results) -> None:
    """Detection: drawn pictures and a COCO JSON in a directory."""
    meta = detector_meta(model)
    source_root = args.source if osp.isdir(args.source) else None
    written = write_det_outputs(
        paths, results, out, classes=meta['classes'],
        cat_ids=meta['cat_ids'], score_thr=args.score_thr,
        draw=not args.no_overlay, source_root=source_root)
    count = sum(len(r['scores']) for r in results)
    print(f'Wrote {count} detections of {len(paths)} images to '
          f'{written["json"]}' +
          (f' and pictures to {osp.join(out, "vis")}'
           if written['pictures'] else ''))


if __name__ == '__main__':
    # bad checkpoint, source or image: the message names the file
    cli_main(main, user_errors=(CheckpointError, FileNotFoundError,
                                ValueError))
