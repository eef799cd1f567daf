"""Whole-image vs sliding-window segmentation inference on CPU.

Times both modes alternately on one model (random weights; speed does not
depend on them) and measures each mode's peak memory in a fresh process.

Example::

    python tools/analysis/benchmark_seg_inference.py --dtypes fp32 bf16 \
        --img-size 512 --crop 256 --stride 171 --markdown
"""
import argparse
import json
import sys

from benchmarks.common import BENCH_DTYPES
from benchmarks.seg_inference import (DEFAULT_CONFIG,
                                      benchmark_whole_vs_slide,
                                      seg_rows_to_markdown)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'],
                        choices=[d for d in BENCH_DTYPES if d != 'fp16'])
    parser.add_argument('--img-size', type=int, default=512)
    parser.add_argument('--crop', type=int, default=256,
                        help='square sliding window side')
    parser.add_argument('--stride', type=int, default=171)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the peak-memory subprocesses')
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    for dtype in args.dtypes:
        row = benchmark_whole_vs_slide(
            args.config, dtype=dtype, img_size=args.img_size,
            crop_size=(args.crop, args.crop),
            stride=(args.stride, args.stride), batch_size=args.batch_size,
            rounds=args.rounds, iters=args.iters, threads=args.threads,
            measure_memory=not args.no_memory)
        rows.append(row)
        if not args.markdown:
            print(json.dumps(row), flush=True)
    if args.markdown:
        print(seg_rows_to_markdown(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
