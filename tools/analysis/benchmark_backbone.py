"""Throughput and peak memory of our DINOv3 ViT vs transformers' DINOv3ViTModel.

Both models hold identical weights (converted by our own converter) and are
timed alternately in one process, so machine noise hits both equally. When a
CUDA GPU is present, bf16 rows at batch 64 on the GPU are added.

Example::

    python tools/analysis/benchmark_backbone.py --archs small base \
        --dtypes fp32 bf16 --batch-size 8 --img-size 224 --markdown
"""
import argparse
import json
import sys

import torch

from benchmarks.backbone import benchmark_vit_vs_hf, to_markdown
from benchmarks.common import BENCH_DTYPES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--archs', nargs='+', default=['small', 'base'])
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'],
                        choices=list(BENCH_DTYPES))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cuda-batch-size', type=int, default=64,
                        help='batch of the extra bf16 CUDA rows, run when a '
                        'GPU is available (0 skips them)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=5,
                        help='alternating timing rounds per model')
    parser.add_argument('--iters', type=int, default=5,
                        help='forward passes per round')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch default)')
    parser.add_argument('--floor', action='store_true',
                        help="also report the compute floor: the reference "
                        "pass's matrix FLOPs at this machine's best GEMM "
                        'rate, and the largest speed-up the same '
                        'computation allows (max_speedup)')
    parser.add_argument('--markdown', action='store_true',
                        help='print a markdown table instead of JSON lines')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = [(args.device, dtype, args.batch_size) for dtype in args.dtypes]
    if (args.device == 'cpu' and args.cuda_batch_size
            and torch.cuda.is_available()):
        runs.append(('cuda', 'bf16', args.cuda_batch_size))
    rows = []
    for device, dtype, batch_size in runs:
        for arch in args.archs:
            row = benchmark_vit_vs_hf(
                arch, dtype, device=device, batch_size=batch_size,
                img_size=args.img_size, rounds=args.rounds, iters=args.iters,
                threads=args.threads, floor=args.floor)
            rows.append(row)
            if not args.markdown:
                print(json.dumps(row), flush=True)
    if args.markdown:
        print(to_markdown(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
