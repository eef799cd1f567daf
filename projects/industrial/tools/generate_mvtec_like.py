"""Write a small synthetic inspection dataset (textured surfaces, defects).

Layouts:

* ``mvtec`` (default): ``OUT/<category>/train/good``, ``test/good``,
  ``test/{scratch,blob}`` and ``ground_truth/<defect>/<name>_mask.png``,
  for ``anomaly_detect.py``.
* ``classification``: an imbalanced ImageFolder
  ``OUT/{train,val,test}/{good,scratch,blob}`` for the defect classifier.
* ``segmentation``: ``OUT/{img_dir,ann_dir}/{train,val}`` with index masks
  (0 background, 1 scratch, 2 blob) for the defect segmenter.

Examples::

    python projects/industrial/tools/generate_mvtec_like.py data/mvtec_like
    python projects/industrial/tools/generate_mvtec_like.py data/defects \\
        --layout classification
    python projects/industrial/tools/generate_mvtec_like.py data/defect_seg \\
        --layout segmentation
"""
import argparse
import os.path as osp
import sys

try:
    import dinov3_mm_industrial  # noqa: F401
except ImportError:  # a checkout without `pip install -e projects/industrial`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from dinov3_mm_industrial.synthetic import (CATEGORIES, DEFECTS,
                                            write_defect_classification,
                                            write_defect_segmentation,
                                            write_mvtec_like)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the generator."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='output folder')
    parser.add_argument('--layout',
                        choices=('mvtec', 'classification', 'segmentation'),
                        default='mvtec')
    parser.add_argument('--categories', nargs='+', default=['fabric'],
                        choices=sorted(CATEGORIES),
                        help='textures (mvtec layout; the other layouts '
                        'use the first)')
    parser.add_argument('--size', type=int, default=128, help='image side')
    parser.add_argument('--num-train', type=int, default=20,
                        help='mvtec: normal training images per category')
    parser.add_argument('--num-test-good', type=int, default=8,
                        help='mvtec: normal test images')
    parser.add_argument('--num-test-defect', type=int, default=6,
                        help='mvtec: test images per defect type')
    parser.add_argument('--num-good', type=int, default=48,
                        help='classification: good training images (val and '
                        'test get a third as many)')
    parser.add_argument('--num-defect', type=int, default=6,
                        help='classification: training images per defect '
                        'type (val and test get 4 each, at least)')
    parser.add_argument('--num-seg-train', type=int, default=24,
                        help='segmentation: training images (val: a third)')
    parser.add_argument('--contrast', type=float, default=1.0,
                        help='defect strength; lower is harder')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.layout == 'mvtec':
        write_mvtec_like(args.out, args.categories, args.num_train,
                         args.num_test_good, args.num_test_defect,
                         size=args.size, contrast=args.contrast,
                         seed=args.seed)
    elif args.layout == 'segmentation':
        write_defect_segmentation(args.out, args.num_seg_train,
                                  max(1, args.num_seg_train // 3),
                                  category=args.categories[0],
                                  size=args.size, contrast=args.contrast,
                                  seed=args.seed)
    else:
        held_out = dict(good=max(1, args.num_good // 3),
                        **{d: max(4, args.num_defect // 2) for d in DEFECTS})
        counts = dict(train=dict(good=args.num_good,
                                 **{d: args.num_defect for d in DEFECTS}),
                      val=held_out, test=held_out)
        write_defect_classification(args.out, counts, args.categories[0],
                                    size=args.size, contrast=args.contrast,
                                    seed=args.seed)
    print(f'Wrote a synthetic {args.layout} dataset to {args.out}')
    return args.out


if __name__ == '__main__':
    main()
