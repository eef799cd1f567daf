"""Per-rank parameter + AdamW memory of a DINOv3 classifier under FSDPWrapper.

Example::

    python tools/analysis/benchmark_fsdp_memory.py --arch large --ranks 2 4 \
        --markdown
"""
import argparse
import json
import sys

from benchmarks.common import rows_to_markdown
from benchmarks.fsdp_memory import fsdp_memory_rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='base',
                        help='DINOv3ViT arch (small, base, large, ...)')
    parser.add_argument('--ranks', nargs='+', type=int, default=[2],
                        help='process counts of the sharded runs')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = fsdp_memory_rows(args.arch, args.ranks, args.device)
    if args.markdown:
        print(rows_to_markdown(rows, ['setup', 'params_mib', 'moments_mib',
                                      'ratio']))
    else:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
