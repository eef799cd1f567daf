"""Send images to a Triton server running a dinov3_mm ensemble.

Examples::

    python tools/triton_client.py data/shapes/test --url 127.0.0.1:8000
    python tools/triton_client.py img.png --protocol grpc --url 127.0.0.1:8001
    python tools/triton_client.py data/shapes/test --benchmark \\
        --concurrency 8 --requests 400

Prints one line per image (top-k labels, or mask size and class shares);
``--benchmark`` prints throughput and p50/p95/p99 latency instead. A
refused request (e.g. an image above the server's ``--max-image-pixels``:
HTTP 400 / gRPC INVALID_ARGUMENT) prints ``ERROR`` and the server's reason
on the line of the image it names, and says so on the lines of the other
images of that request; the exit code is then 1.
"""
import argparse
import json
import re
import sys

from dinov3_mm.deploy.client import (batched, benchmark, describe,
                                     read_files, run_requests, stats_line)
from dinov3_mm.deploy.parity_inputs import list_image_sources


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


def _error_lines(names, error: str) -> list:
    """One ``ERROR`` line per image of a refused request."""
    found = re.search(r'image (\d+) of the request', error)
    index = int(found.group(1)) if found else None
    if index is None or index >= len(names):
        return [f'{name}\tERROR {error}' for name in names]
    return [f'{name}\tERROR {error}' if i == index else
            f'{name}\tERROR not served: {names[index]} in the same request '
            f'was refused' for i, name in enumerate(names)]


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
        if result['error'] is not None:
            failed += len(names)
            print('\n'.join(_error_lines(names, result['error'])))
            continue
        for i, name in enumerate(names):
            print(f'{name}\t{describe(result["outputs"], i)}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
