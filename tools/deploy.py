"""Export a trained checkpoint to ONNX, verify it and write Triton repositories.

Example::

    python tools/deploy.py configs/demo/convnext_shapes.py \\
        work_dirs/demo/epoch_10.pth --work-dir work_dirs/deploy

writes ``model.onnx``, ``parity_report.{json,md}``, ``deploy.json`` and two
Triton model repositories: ``triton/`` (``onnxruntime_onnx`` backend) and
``triton_python/`` (onnxruntime inside the Python backend).
"""
import argparse
import json
import math
import sys

from dinov3_mm.engine.cli_options import CfgOptionsAction

from dinov3_mm.deploy import ExportError, ParityError
from dinov3_mm.deploy.deployment import deploy
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 require_checkpoint, require_config)
from dinov3_mm.utils.image_ops import (DEFAULT_MAX_IMAGE_BYTES,
                                       DEFAULT_MAX_IMAGE_PIXELS)


def _limit(text: str):
    """A positive whole number (``40000000`` or ``4e7``), or ``none``."""
    if text.strip().lower() == 'none':
        return None
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise argparse.ArgumentTypeError(
            f'expected a positive whole number or "none", got {text}')
    return int(value)


def _read_json(path):
    """The content of a JSON file given on the command line, or None."""
    if path is None:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError(f'--ood-threshold {path}: cannot read it as JSON '
                        f'({exc}); write it with tools/test_ood.py '
                        '--write-threshold msp') from exc


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the deploy tool."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config file')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint (random weights when omitted)')
    parser.add_argument('--work-dir', required=True, help='output folder')
    parser.add_argument(
        '--task', default='auto',
        choices=['auto', 'classification', 'segmentation', 'detection',
                 'features'])
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument(
        '--dynamic', default='batch',
        help='comma-separated dynamic axes: batch, hw (or "none")')
    parser.add_argument('--precision', default='fp32',
                        choices=['fp32', 'fp16', 'bf16', 'int8'])
    parser.add_argument('--max-batch-size', type=int, default=8)
    parser.add_argument('--instance-kind', default='cpu',
                        choices=['cpu', 'gpu'])
    parser.add_argument('--name', default='dinov3',
                        help='Triton ensemble name')
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument(
        '--score-thr', type=float, default=None,
        help='detection: served detections score at least this (default: '
        "the model's test_cfg.score_thr, else 0.3); the ONNX file returns "
        'the top test_cfg.num_select detections unthresholded')
    parser.add_argument(
        '--ood-threshold', metavar='JSON',
        help='ood_threshold.json of tools/test_ood.py --write-threshold msp: '
        'the classification ensemble also returns OOD (true when the top '
        'probability is below the threshold)')
    parser.add_argument(
        '--parity-images', nargs='+',
        help='image files or folders for the parity check (default: the '
        "config's test set)")
    parser.add_argument('--num-parity-images', type=int, default=8)
    parser.add_argument(
        '--max-image-pixels', type=_limit, default=DEFAULT_MAX_IMAGE_PIXELS,
        help='the served preprocessing refuses (HTTP 400 / gRPC '
        'INVALID_ARGUMENT) images whose header declares more pixels, '
        'before decoding them; "none": no limit (default: %(default)s)')
    parser.add_argument(
        '--max-image-bytes', type=_limit, default=DEFAULT_MAX_IMAGE_BYTES,
        help='... and encoded images longer than this many bytes; "none": '
        'no limit (default: %(default)s = 32 MiB)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require_config(args.config)
    if args.checkpoint:
        require_checkpoint(args.checkpoint)
    dynamic = [a for a in args.dynamic.split(',')
               if a.strip() and a.strip() != 'none']
    try:
        summary = deploy(
            args.config, args.checkpoint, args.work_dir, task=args.task,
            opset=args.opset, dynamic=[a.strip() for a in dynamic],
            precision=args.precision, max_batch_size=args.max_batch_size,
            instance_kind=args.instance_kind,
            parity_images=args.parity_images,
            num_parity_images=args.num_parity_images, name=args.name,
            topk=args.topk, ood_threshold=_read_json(args.ood_threshold),
            cfg_options=args.cfg_options,
            max_image_pixels=args.max_image_pixels,
            max_image_bytes=args.max_image_bytes,
            score_threshold=args.score_thr)
    except (ExportError, ParityError, FileNotFoundError, ValueError) as exc:
        print(f'deploy failed: {exc}', file=sys.stderr)
        return 1
    print(f"{summary['task']} model exported to {summary['onnx']} "
          f"({summary['precision']}); parity passed on "
          f"{len(summary['checks'])} checks, see "
          f"{args.work_dir}/parity_report.md")
    for backend, repo in summary['repositories'].items():
        print(f'Triton repository ({backend}): {repo}')
    return 0


if __name__ == '__main__':
    cli_main(main)
