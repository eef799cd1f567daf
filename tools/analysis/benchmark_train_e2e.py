"""Wall time of tools/train.py against a plain PyTorch loop on the same work.

Example::

    python tools/analysis/benchmark_train_e2e.py configs/demo/convnext_shapes.py \
        --epochs 20 --rounds 2 --markdown
    python tools/analysis/benchmark_train_e2e.py configs/demo/convnext_shapes.py \
        --vit small --epochs 3 --markdown
"""
import argparse
import json
import os
import sys
import tempfile

from benchmarks.common import rows_to_markdown
from benchmarks.train_e2e import benchmark_train_e2e


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--data', help='dataset root (default: the shapes '
                        'dataset generated into a temporary folder)')
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--vit', metavar='ARCH',
                        help='replace the backbone by a DINOv3ViT of this '
                        'arch (e.g. small): optimizer-heavier steps')
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = os.path.abspath(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from dinov3_mm.datasets.synthetic import write_shape_dataset
            data = write_shape_dataset(os.path.join(tmp, 'shapes'))
        row = benchmark_train_e2e(config, os.path.abspath(data), args.epochs,
                                  args.rounds, args.vit)
    if args.markdown:
        print(rows_to_markdown([row], list(row)))
    else:
        print(json.dumps(row, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
