"""Deployment benchmarks on CPU: onnxruntime vs PyTorch eager, Triton vs
in-process onnxruntime (ViT-S/16 classification at 224, random weights).

Example::

    python tools/analysis/benchmark_deploy.py --work-dir work_dirs/bench_deploy
"""
import argparse
import json
import os.path as osp
import sys

from dinov3_mm.datasets.synthetic import write_shape_dataset

from benchmarks.common import rows_to_markdown
from benchmarks.deploy import (DEFAULT_CONFIG, onnx_vs_eager,
                               triton_vs_in_process)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/bench_deploy')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--concurrency', type=int, default=8)
    parser.add_argument('--requests', type=int, default=400)
    parser.add_argument('--protocol', default='grpc', choices=['http',
                                                               'grpc'])
    parser.add_argument('--skip-triton', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    data = osp.join(args.work_dir, 'images')
    write_shape_dataset(data, num_per_class=4, size=256, splits=('test', ))
    rows = onnx_vs_eager(args.work_dir, data, args.batch_sizes, args.rounds,
                         args.threads, args.config)
    print(rows_to_markdown(rows, [
        'batch', 'threads', 'eager_fp32', 'eager_bf16', 'ort_fp32',
        'ort_int8', 'ort_fp32_vs_eager', 'ort_int8_vs_eager',
        'eager_bf16_vs_eager'
    ]))
    result = dict(onnx_vs_eager=rows)
    if not args.skip_triton:
        served = triton_vs_in_process(args.work_dir, data, args.concurrency,
                                      args.requests, args.threads,
                                      args.protocol, args.config)
        print(rows_to_markdown([served], [
            'protocol', 'concurrency', 'requests', 'failed', 'images_per_s',
            'in_process_images_per_s', 'served_vs_in_process', 'p50_ms',
            'p95_ms', 'p99_ms'
        ]))
        result['triton'] = served
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
