"""COCO evaluation: pycocotools vs faster-coco-eval, CocoMetric peak memory.

Example::

    python tools/analysis/benchmark_coco_eval.py --images 200 --instances 50 \
        --size 640 --rounds 3 --markdown
"""
import argparse
import json
import sys

from benchmarks.coco_eval import (benchmark_evaluators, memory_markdown,
                                  metric_memory, speed_markdown)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=200)
    parser.add_argument('--instances',
                        type=int,
                        default=50,
                        help='ground-truth objects per image (the '
                        'predictions are twice as many)')
    parser.add_argument('--size',
                        type=int,
                        default=640,
                        help='square image side in pixels')
    parser.add_argument('--rounds',
                        type=int,
                        default=3,
                        help='alternating timing rounds (best counts)')
    parser.add_argument('--no-speed',
                        action='store_true',
                        help='skip the evaluator speed comparison')
    parser.add_argument('--no-memory',
                        action='store_true',
                        help='skip the CocoMetric memory subprocess')
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.no_speed:
        rows = benchmark_evaluators(args.images, args.instances, args.size,
                                    args.rounds)
        print(speed_markdown(rows) if args.markdown else json.dumps(rows),
              flush=True)
    if not args.no_memory:
        row = metric_memory(args.images, args.instances, args.size)
        print(memory_markdown([row]) if args.markdown else json.dumps(row),
              flush=True)
        if args.markdown:
            print(json.dumps(row['values']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
