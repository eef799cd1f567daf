"""Write the generated shapes datasets used by the demo and recipe configs.

Classification (3 classes, ImageFolder splits) or, with ``--seg``,
segmentation (background, circle, square, triangle on textured backgrounds,
mmseg ``img_dir/ann_dir`` folders with train and val splits).

Examples::

    python tools/generate_shapes_dataset.py data/shapes --train 100 --val 30 --test 30
    python tools/generate_shapes_dataset.py data/seg_shapes --seg --train 256 --val 64 --size 64
"""
import argparse
import os.path as osp
import sys

from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', nargs='?', default=None,
                        help='output folder (default data/shapes, or '
                        'data/seg_shapes with --seg)')
    parser.add_argument('--seg', action='store_true',
                        help='write the segmentation dataset')
    parser.add_argument('--train', type=int, default=None,
                        help='images per class in train/ (default 100); '
                        'with --seg: train images (default 256)')
    parser.add_argument('--val', type=int, default=None,
                        help='default 30 per class; with --seg 64 images')
    parser.add_argument('--test', type=int, default=30,
                        help='images per class (classification only)')
    parser.add_argument('--size', type=int, default=None,
                        help='image side (default 224; 64 with --seg)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='rewrite an existing dataset')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.seg:
        root = args.root or 'data/seg_shapes'
        train = 256 if args.train is None else args.train
        val = 64 if args.val is None else args.val
        size = args.size or 64
        if osp.isdir(osp.join(root, 'img_dir', 'train')) and not args.force:
            print(f'{root} exists; keeping it (--force rewrites it)')
            return 0
        write_seg_shapes_dataset(root, num_train=train, num_val=val,
                                 size=size, seed=args.seed)
        print(f'Wrote segmentation shapes dataset to {root} '
              f'({train} train / {val} val images, {size}x{size})')
        return 0
    root = args.root or 'data/shapes'
    train = 100 if args.train is None else args.train
    val = 30 if args.val is None else args.val
    if osp.isdir(osp.join(root, 'train')) and not args.force:
        print(f'{root} exists; keeping it (--force rewrites it)')
        return 0
    write_shape_dataset(
        root, size=args.size or 224, seed=args.seed,
        per_split=dict(train=train, val=val, test=args.test))
    print(f'Wrote shapes dataset to {root} '
          f'({train}/{val}/{args.test} images per class)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
