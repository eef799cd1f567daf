"""Cost of a 50-epoch cached-feature linear probe vs one extraction pass.

Example::

    python tools/analysis/benchmark_linear_probe.py \
        configs/classification/vits16_linear_probe_shapes.py
"""
import argparse
import json
import sys

import dinov3_mm  # noqa: F401

from benchmarks.linear_probe import benchmark_linear_probe


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'config', nargs='?',
        default='configs/classification/vits16_linear_probe_shapes.py')
    parser.add_argument('--images-per-class', type=int, default=100)
    parser.add_argument('--epochs', type=int, default=50)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--data-root', help='an ImageFolder with train/')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    result = benchmark_linear_probe(
        args.config, images_per_class=args.images_per_class,
        epochs=args.epochs, img_size=args.img_size, data_root=args.data_root)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
