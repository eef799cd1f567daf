"""Check a classification or segmentation dataset before training on it.

Classification (an ImageFolder root or a .csv / .json annotation file):
prints counts per class and split, the imbalance ratio, unreadable or
truncated files, images that are too small, too dark, too bright or flat,
and exact duplicates across splits. Paths in an annotation file must stay
inside the file's folder (``--allow-paths-outside-root`` accepts others).

Segmentation (``--seg``, or a root holding ``img_dir/`` and ``ann_dir/``,
mmseg layout): pairs images and masks per split and prints pixels and
images per class, images without masks, masks without images, unreadable
files, masks of another size than their image, values outside the classes
(per file), classes with no pixel and masks that are all ignore or all
background. Masks are decoded as LoadSegAnnotation does (palette PNGs,
RGB-encoded masks through --palette).

Detection (``--det``, a COCO JSON, a root with ``annotations/*.json`` or a
YOLO root with ``images/`` and ``labels/``): prints objects and images per
class and split, missing or unreadable images, boxes outside the image or
degenerate, unknown category ids, polygons with fewer than 3 points, RLE of
the wrong size, YOLO lines with the wrong number of fields or coordinates
outside 0-1, masks that do not match their boxes, images without objects
(a warning), repeated image ids, annotations and images.

Exits 1 when a failing rule has issues, 2 when the annotations or the
layout cannot be read, 0 otherwise.

Examples::

    python tools/validate_dataset.py data/shapes
    python tools/validate_dataset.py data/labels.csv --max-imbalance 5 \\
        --fail-on unreadable,duplicates,too_small --json report.json
    python tools/validate_dataset.py data/seg_shapes \\
        --classes background,circle,square,triangle
    python tools/validate_dataset.py data/ade --seg --num-classes 150 \\
        --img-suffix .jpg --reduce-zero-label
    python tools/validate_dataset.py data/instance_shapes  # COCO, per split
    python tools/validate_dataset.py \\
        data/coco/annotations/instances_val2017.json \\
        --img-dir data/coco/val2017
    python tools/validate_dataset.py data/yolo --classes data/yolo/data.yaml
"""
import argparse
import json
import os.path as osp
import sys

from dinov3_mm.datasets.det_validation import (DET_CHECKS,
                                               DET_DEFAULT_FAIL_ON,
                                               DetValidationRules,
                                               is_detection_source,
                                               validate_det_dataset)
from dinov3_mm.datasets.seg_validation import (SEG_CHECKS, SEG_DEFAULT_FAIL_ON,
                                               SegValidationRules,
                                               validate_seg_dataset)
from dinov3_mm.datasets.validation import (CHECKS, DEFAULT_FAIL_ON,
                                           ValidationRules, validate_dataset)
from dinov3_mm.utils.cli import add_debug_argument, cli_main

DET_USES = ('classes', 'img_dir')
SEG_ONLY = ('classes', 'num_classes', 'ignore_index', 'img_suffix',
            'seg_map_suffix', 'reduce_zero_label', 'palette', 'mask_format',
            'img_dir', 'ann_dir')


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the validation tool."""
    defaults = ValidationRules()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', help='ImageFolder root, a .csv / .json '
                        'annotation file, or a segmentation root with '
                        'img_dir/ and ann_dir/')
    parser.add_argument('--max-imbalance', type=float, default=None,
                        help='largest allowed max/min class count ratio '
                        f'(default {defaults.max_imbalance:g}; segmentation: '
                        f'class pixels, default '
                        f'{SegValidationRules().max_imbalance:g})')
    parser.add_argument('--min-size', type=int, default=defaults.min_size,
                        help='smallest allowed image side in pixels')
    parser.add_argument('--dark-mean', type=float, default=defaults.dark_mean,
                        help='mean grey level below which an image is too '
                        'dark')
    parser.add_argument('--bright-mean', type=float,
                        default=defaults.bright_mean,
                        help='mean grey level above which an image is too '
                        'bright')
    parser.add_argument('--flat-std', type=float, default=defaults.flat_std,
                        help='grey-level std below which an image is flat')
    parser.add_argument('--fail-on', default=None,
                        help='comma-separated checks that fail, or "all" / '
                        f'"none"; classification: {",".join(CHECKS)} '
                        f'(default {",".join(DEFAULT_FAIL_ON)}); '
                        f'segmentation: {",".join(SEG_CHECKS)} (default '
                        f'{",".join(SEG_DEFAULT_FAIL_ON)}); detection: '
                        f'{",".join(DET_CHECKS)} (default '
                        f'{",".join(DET_DEFAULT_FAIL_ON)})')
    parser.add_argument('--workers', type=int, default=defaults.workers,
                        help='threads reading images')
    parser.add_argument('--json', help='also write the report to this file')
    parser.add_argument('--allow-paths-outside-root', action='store_true',
                        help='accept annotation-file paths that leave the '
                        'annotation file\'s folder (../x.png, absolute, ~)')
    seg = parser.add_argument_group(
        'segmentation', 'used with --seg, or when the source holds img_dir/ '
        'and ann_dir/')
    seg.add_argument('--seg', action='store_true',
                     help='validate a segmentation dataset')
    seg.add_argument('--classes',
                     help='class names, comma-separated (index 0 first), or '
                     'a text file with one per line')
    seg.add_argument('--num-classes', type=int,
                     help='number of classes, when no names')
    seg.add_argument('--ignore-index', type=int, default=None,
                     help='label value ignored (default 255)')
    seg.add_argument('--img-suffix', default=None,
                     help='image file suffix (default .png)')
    seg.add_argument('--seg-map-suffix', default=None,
                     help='mask file suffix (default .png)')
    seg.add_argument('--reduce-zero-label', action='store_true',
                     default=None,
                     help='0 is unlabelled: map it to the ignore index and '
                     'shift the other labels down by one')
    seg.add_argument('--palette',
                     help='RGB colour per class for RGB-encoded masks: JSON '
                     '("[[0,0,0],[255,0,0]]") or a .json file')
    seg.add_argument('--mask-format', choices=('auto', 'index', 'rgb'),
                     default=None, help='mask decoding (default auto)')
    seg.add_argument('--img-dir', default=None,
                     help='image folder under the root (default img_dir)')
    seg.add_argument('--ann-dir', default=None,
                     help='mask folder under the root (default ann_dir)')
    det = parser.add_argument_group(
        'detection', 'used with --det, or when the source is a COCO JSON, a '
        'folder with annotations/*.json or a YOLO root (images/, labels/); '
        '--classes names the YOLO classes (or a data.yaml) and --img-dir '
        'the image folder of a single COCO JSON')
    det.add_argument('--det', action='store_true',
                     help='validate a detection dataset')
    det.add_argument('--det-format', choices=('auto', 'coco', 'yolo'),
                     default='auto', help='annotation format (default auto)')
    det.add_argument('--min-mask-box-iou', type=float, default=None,
                     help='smallest IoU between a mask\'s tight box and its '
                     'annotation box (default '
                     f'{DetValidationRules().min_mask_box_iou:g})')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def _is_det(args) -> bool:
    if args.det or args.det_format != 'auto':
        return True
    if is_detection_source(args.source):
        return True
    if args.min_mask_box_iou is not None:
        raise ValueError(f'--min-mask-box-iou only applies to detection '
                         f'datasets, and {args.source} is not one; add --det '
                         'to validate it as one.')
    return False


def _is_seg(args) -> bool:
    if args.seg:
        return True
    img_dir, ann_dir = args.img_dir or 'img_dir', args.ann_dir or 'ann_dir'
    if (osp.isdir(osp.join(args.source, img_dir))
            and osp.isdir(osp.join(args.source, ann_dir))):
        return True
    given = [f'--{k.replace("_", "-")}' for k in SEG_ONLY
             if getattr(args, k) is not None]
    if given:
        raise ValueError(
            f'{", ".join(given)} only apply to segmentation datasets, and '
            f'{args.source} has no {img_dir}/ and {ann_dir}/ folders; add '
            '--seg to validate it as one.')
    return False


def _classes(value):
    if value is None or osp.isfile(value):
        return value
    return [c.strip() for c in value.split(',') if c.strip()]


def _palette(value):
    if value is None:
        return None
    if osp.isfile(value):
        with open(value, encoding='utf-8') as f:
            return json.load(f)
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f'--palette {value!r} is neither a file nor JSON '
                         f'([[r, g, b], ...]): {exc}') from exc


def _run(args):
    det = _is_det(args)
    if det:
        given = [f'--{k.replace("_", "-")}' for k in SEG_ONLY
                 if k not in DET_USES and getattr(args, k) is not None]
        if given:
            raise ValueError(f'{", ".join(given)} only apply to '
                             'segmentation datasets, not to the detection '
                             f'dataset {args.source}.')
    seg = not det and _is_seg(args)
    rules_cls = (DetValidationRules if det else
                 SegValidationRules if seg else ValidationRules)
    kwargs = dict(min_size=args.min_size, dark_mean=args.dark_mean,
                  bright_mean=args.bright_mean, flat_std=args.flat_std,
                  workers=args.workers)
    if args.max_imbalance is not None:
        kwargs['max_imbalance'] = args.max_imbalance
    if args.fail_on is not None:
        kwargs['fail_on'] = [c.strip() for c in args.fail_on.split(',')
                             if c.strip()]
    if det and args.min_mask_box_iou is not None:
        kwargs['min_mask_box_iou'] = args.min_mask_box_iou
    rules = rules_cls(**kwargs)
    if det:
        return validate_det_dataset(args.source, fmt=args.det_format,
                                    classes=_classes(args.classes),
                                    img_dir=args.img_dir, rules=rules)
    if not seg:
        return validate_dataset(
            args.source, rules,
            allow_paths_outside_root=args.allow_paths_outside_root)
    return validate_seg_dataset(
        args.source,
        classes=_classes(args.classes),
        num_classes=args.num_classes,
        img_suffix=args.img_suffix or '.png',
        seg_map_suffix=args.seg_map_suffix or '.png',
        ignore_index=(255 if args.ignore_index is None else
                      args.ignore_index),
        reduce_zero_label=bool(args.reduce_zero_label),
        mask_format=args.mask_format or 'auto',
        palette=_palette(args.palette),
        img_dir=args.img_dir or 'img_dir',
        ann_dir=args.ann_dir or 'ann_dir',
        rules=rules)


def main(argv=None) -> int:
    """Run the checks; return the exit code."""
    args = parse_args(argv)
    try:
        report = _run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(report.render())
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(report.to_dict(), f, indent=2)
    return 0 if report.passed else 1


if __name__ == '__main__':
    cli_main(main)
