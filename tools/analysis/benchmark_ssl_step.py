"""Images/s of one DINOv3 SSL step vs a supervised step, CPU, fp32 / bf16.

Example::

    python tools/analysis/benchmark_ssl_step.py --arch small --dtypes fp32 bf16 \
        --batch-size 8 --markdown
"""
import argparse
import json
import sys

from benchmarks.ssl_step import benchmark_ssl_step, ssl_rows_to_markdown


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='small')
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'],
                        choices=['fp32', 'bf16'])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--local-crops', type=int, default=8)
    parser.add_argument('--global-size', type=int, default=224)
    parser.add_argument('--local-size', type=int, default=96)
    parser.add_argument('--prototypes', type=int, default=65536)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    for dtype in args.dtypes:
        row = benchmark_ssl_step(
            args.arch, dtype, batch_size=args.batch_size,
            n_local=args.local_crops, global_size=args.global_size,
            local_size=args.local_size, out_dim=args.prototypes,
            rounds=args.rounds, iters=args.iters, threads=args.threads)
        rows.append(row)
        if not args.markdown:
            print(json.dumps(row), flush=True)
    if args.markdown:
        print(ssl_rows_to_markdown(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
