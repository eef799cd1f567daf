"""Send images to a Triton server running a dinov3_mm ensemble.

Examples::

    python tools/triton_client.py data/shapes/test --url 127.0.0.1:8000
    python tools/triton_client.py img.png --protocol grpc --url 127.0.0.1:8001
    python tools/triton_client.py data/shapes/test --benchmark \\
        --concurrency 8 --requests 400

Prints one line per image (top-k labels, or mask size and class shares);
``--benchmark`` prints throughput and p50/p95/p99 latency instead.
"""
import argparse
import json
import sys

from dinov3_mm.deploy.client import (batched, benchmark, describe,
                                     read_files, run_requests, stats_line)
from dinov3_mm.deploy.deployment import list_image_sources


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the client."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('inputs', nargs='+', help='image files or folders')
    parser.add_argument('--url', default='127.0.0.1:8000',
                        help='host:port of the HTTP (or gRPC) endpoint')
    parser.add_argument('--protocol', default='http', choices=['http',
                                                               'grpc'])
    parser.add_argument('--model', default='dinov3', help='ensemble name')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per request')
    parser.add_argument('--concurrency', type=int, default=1,
                        help='parallel client connections')
    parser.add_argument('--benchmark', action='store_true',
                        help='report throughput and latency percentiles')
    parser.add_argument('--requests', type=int, default=200,
                        help='requests sent in --benchmark mode')
    parser.add_argument('--warmup', type=int, default=10,
                        help='untimed requests before --benchmark')
    parser.add_argument('--timeout', type=float, default=60.0)
    parser.add_argument('--json', help='write the results/summary here')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = list_image_sources(args.inputs)
    data = read_files(paths)
    run = dict(protocol=args.protocol, model=args.model,
               concurrency=args.concurrency, timeout=args.timeout)
    if args.benchmark:
        summary = benchmark(args.url, data, batch_size=args.batch_size,
                            requests=args.requests, warmup=args.warmup,
                            **run)
        print(stats_line(summary, f'{args.protocol} x{args.concurrency}'))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(summary, f, indent=2)
        return 1 if summary['failed'] else 0
    path_batches = batched(paths, args.batch_size)
    results = run_requests(args.url, batched(data, args.batch_size), **run)
    failed = 0
    for names, result in zip(path_batches, results):
        for i, name in enumerate(names):
            if result['error'] is not None:
                failed += 1
                print(f'{name}\tERROR {result["error"]}')
            else:
                print(f'{name}\t{describe(result["outputs"], i)}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
