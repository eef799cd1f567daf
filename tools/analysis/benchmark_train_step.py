"""One training step of our classifier vs the same step written plainly on transformers.

Ours is ``DINOv3Classifier.train_step`` with our OptimWrapper (fp32) or
AmpOptimWrapper (autocast), AdamW fused as ``tools/train.py`` sets it; the
reference is ``DINOv3ViTModel`` / ``DINOv3ConvNextModel`` with identical
weights, the same pooled features, a linear head, cross-entropy and
``torch.optim.AdamW``. Both are timed alternately in one process; the
fastest round counts.

Example::

    python tools/analysis/benchmark_train_step.py --archs small base \
        convnext_tiny --dtypes fp32 bf16 --batch-size 16 --markdown

``--floor`` adds the compute floor: the step's matrix FLOPs at this
machine's best GEMM rate, and so the largest speed-up over the reference
that the same computation allows.
"""
import argparse
import json
import sys

from benchmarks.common import BENCH_DTYPES
from benchmarks.train_step import benchmark_train_step, to_markdown


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--archs', nargs='+',
                        default=['small', 'base', 'convnext_tiny'],
                        help="ViT archs ('small', 'base') and/or "
                        "'convnext_<arch>'")
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'],
                        choices=list(BENCH_DTYPES))
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=5,
                        help='alternating timing rounds')
    parser.add_argument('--iters', type=int, default=2,
                        help='steps per round')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps of each first')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch default)')
    parser.add_argument('--no-fused', action='store_true',
                        help="keep torch's default AdamW implementation "
                        'for ours too (measures the fused-optimizer lever)')
    parser.add_argument('--compile', nargs='?', const='inductor',
                        default=None, metavar='BACKEND',
                        help="torch.compile our train_step as "
                        "tools/train.py --compile does (default backend: "
                        "inductor); the reference stays eager")
    parser.add_argument('--floor', action='store_true',
                        help="also report the compute floor: the reference "
                        "step's matrix FLOPs at this machine's best GEMM "
                        'rate, and the largest speed-up the same '
                        'computation allows (max_speedup)')
    parser.add_argument('--markdown', action='store_true',
                        help='print a markdown table instead of JSON lines')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    for dtype in args.dtypes:
        for arch in args.archs:
            row = benchmark_train_step(
                arch, dtype, device=args.device, batch_size=args.batch_size,
                img_size=args.img_size, rounds=args.rounds, iters=args.iters,
                warmup=args.warmup, threads=args.threads,
                fused=not args.no_fused, compile_backend=args.compile,
                floor=args.floor)
            rows.append(row)
            if not args.markdown:
                print(json.dumps(row), flush=True)
    if args.markdown:
        print(to_markdown(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
