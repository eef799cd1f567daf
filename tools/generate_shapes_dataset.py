"""Write the generated 3-class shapes dataset used by the demo configs.

Example::

    python tools/generate_shapes_dataset.py data/shapes --train 100 --val 30 --test 30
"""
import argparse
import os.path as osp
import sys

from dinov3_mm.datasets.synthetic import write_shape_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', nargs='?', default='data/shapes')
    parser.add_argument('--train', type=int, default=100,
                        help='images per class in train/')
    parser.add_argument('--val', type=int, default=30)
    parser.add_argument('--test', type=int, default=30)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='rewrite an existing dataset')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if osp.isdir(osp.join(args.root, 'train')) and not args.force:
        print(f'{args.root} exists; keeping it (--force rewrites it)')
        return 0
    write_shape_dataset(
        args.root, size=args.size, seed=args.seed,
        per_split=dict(train=args.train, val=args.val, test=args.test))
    print(f'Wrote shapes dataset to {args.root} '
          f'({args.train}/{args.val}/{args.test} images per class)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
