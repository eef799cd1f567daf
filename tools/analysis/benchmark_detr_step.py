"""Training step and inference images/s of DINOv3DETR vs mmdet's DINO.

Same DINOv3 ViT-S/16 backbone, input size and random batch, timed in one
process (alternating rounds, fastest counts); needs the ``det`` extra
(mmdet 3.3.0 with the full mmcv). See benchmarks/detr_step.py.

Example::

    python tools/analysis/benchmark_detr_step.py --size 320 --batch-size 2 \
        --dtype bf16 --markdown
"""
import argparse
import json
import sys

from benchmarks.common import rows_to_markdown
from benchmarks.detr_step import benchmark_detr_step


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16'])
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--size', type=int, default=320,
                        help='input side, a multiple of 64')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    row = benchmark_detr_step(args)
    if args.markdown:
        print(rows_to_markdown([row], list(row)))
    else:
        print(json.dumps(row))
    return 0


if __name__ == '__main__':
    sys.exit(main())
