"""Send images to a Triton server running a dinov3_mm ensemble.

Examples::

    python tools/triton_client.py data/shapes/test --url 127.0.0.1:8000
    python tools/triton_client.py img.png --protocol grpc --url 127.0.0.1:8001
    python tools/triton_client.py data/seg_shapes/img_dir/val \\
        --save-masks work_dirs/masks \\
        --json work_dirs/results.json
    python tools/triton_client.py data/shapes/test --benchmark \\
        --concurrency 8 --requests 400

Prints one line per image (top-k labels, followed by ``OOD`` when a
deployment made with ``tools/deploy.py --ood-threshold`` flags the image as
out-of-distribution; or mask size and the fraction of
pixels of each class, named after the classes the server publishes, or
``--classes``); ``--json`` also writes them
per image, ``--save-masks`` writes returned masks as palette PNGs (class
indices when read back, like ``tools/infer.py``'s). ``--benchmark`` prints
throughput and p50/p95/p99 latency instead (``--json``: the summary).

Before sending images the client checks that a server answers the
protocol at ``--url`` and serves ``--model``; if not, it says so and exits 1.
A refused request (e.g. an image above the server's ``--max-image-pixels``:
HTTP 400 / gRPC INVALID_ARGUMENT) prints ``ERROR`` and the server's reason
on the line of the image it names, and says so on the lines of the other
images of that request; the exit code is then 1.
"""
import argparse
import json
import re

from dinov3_mm.deploy.client import (ServerUnavailableError, batched,
                                     benchmark, check_server, describe,
                                     fetch_served_classes, image_result,
                                     parse_class_names, read_files,
                                     run_requests, save_served_masks,
                                     stats_line)
from dinov3_mm.deploy.parity_inputs import list_image_sources
from dinov3_mm.utils.cli import UserError, add_debug_argument, cli_main


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
    parser.add_argument('--json', help='write the per-image results (or the '
                        '--benchmark summary) to this file')
    parser.add_argument(
        '--classes',
        help='segmentation class names (default: those the server '
        'publishes in the postprocess config): the Triton repository (or '
        'deploy work dir) tools/deploy.py wrote, a text file with one name '
        'per line, or names separated by commas')
    parser.add_argument('--save-masks', metavar='DIR',
                        help='segmentation: write each returned mask as a '
                        'palette PNG under DIR')
    add_debug_argument(parser)
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


def read_classes(value, model: str):
    """Class names from ``--classes`` (see its help), or None."""
    try:
        return parse_class_names(value, model)
    except FileNotFoundError as exc:
        raise UserError(f'--classes {exc}', exit_code=2) from exc


def _benchmark(args, data, run) -> int:
    summary = benchmark(args.url, data, batch_size=args.batch_size,
                        requests=args.requests, warmup=args.warmup, **run)
    print(stats_line(summary, f'{args.protocol} x{args.concurrency}'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=2)
    return 1 if summary['failed'] else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    classes = read_classes(args.classes, args.model)
    paths = list_image_sources(args.inputs)
    data = read_files(paths)
    check_server(args.url, args.protocol, args.model,
                 timeout=min(args.timeout, 10.0))
    if classes is None:
        classes = fetch_served_classes(args.url, args.protocol, args.model,
                                       timeout=min(args.timeout, 10.0))
    run = dict(protocol=args.protocol, model=args.model,
               concurrency=args.concurrency, timeout=args.timeout)
    if args.benchmark:
        return _benchmark(args, data, run)
    path_batches = batched(paths, args.batch_size)
    results = run_requests(args.url, batched(data, args.batch_size), **run)
    records, per_image, failed = [], [], 0
    for names, result in zip(path_batches, results):
        if result['error'] is not None:
            failed += len(names)
            lines = _error_lines(names, result['error'])
            print('\n'.join(lines))
            records += [dict(image=n, error=line.split('\tERROR ', 1)[1])
                        for n, line in zip(names, lines)]
            per_image += [None] * len(names)
            continue
        for i, name in enumerate(names):
            print(f'{name}\t{describe(result["outputs"], i, classes)}')
            records.append(dict(image=name, **image_result(
                result['outputs'], i, classes)))
            per_image.append((result['outputs'], i))
    if args.save_masks:
        count = save_served_masks(args.save_masks, paths, per_image, classes)
        print(f'Wrote {count} masks to {args.save_masks}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(url=args.url, protocol=args.protocol,
                           model=args.model, failed=failed, results=records),
                      f, indent=2)
    return 1 if failed else 0


if __name__ == '__main__':
    cli_main(main, user_errors=(ServerUnavailableError, FileNotFoundError))
