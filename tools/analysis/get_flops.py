"""FLOPs and parameters of a config's model at a given input size.

One forward pass of the model (backbone, neck and head, ``mode='tensor'``; no
data preprocessor) on a random ``1 x C x H x W`` batch, counted by mmengine's
fvcore-style analyser: one FLOP per multiply-add of matrix products,
convolutions, attention, norms and resizes; element-wise ops are not
counted. Random weights are used (nothing is loaded)::

    python tools/analysis/get_flops.py configs/demo/convnext_shapes.py --shape 112
    python tools/analysis/get_flops.py configs/segmentation/vit_unet_seg_shapes.py --shape 512 512
"""
import argparse

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dinov3_mm.apis.complexity import format_count, model_complexity
from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 require_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='FLOPs and parameters of a config\'s model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[224, 224],
                        help='input height and width (one value: square); '
                        'default 224 224')
    parser.add_argument('--channels', type=int, default=3,
                        help='input channels (default 3)')
    parser.add_argument('--max-depth', type=int, default=3,
                        help='depth of the per-module table (default 3)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. '
                        'model.backbone.arch=base')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def input_shape(shape, channels: int) -> tuple:
    """``(1, channels, H, W)`` from ``--shape H [W]``."""
    if len(shape) == 1:
        shape = [shape[0], shape[0]]
    if len(shape) != 2 or min(shape) < 1 or channels < 1:
        raise UserError(f'--shape {" ".join(map(str, shape))}: give the '
                        'input height and width (or one size), e.g. '
                        '--shape 224 224.')
    return (1, channels, *shape)


def build_model(cfg: Config, config_path: str) -> torch.nn.Module:
    """The config's model in eval mode, weights not loaded."""
    if not cfg.get('model'):
        raise UserError(f'{config_path} has no `model` to count.')
    init_default_scope(cfg.get('default_scope') or 'dinov3_mm')
    return MODELS.build(cfg.model).eval()


def main(argv=None) -> None:
    args = parse_args(argv)
    require_config(args.config)
    shape = input_shape(args.shape, args.channels)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg, args.config)
    inputs = (torch.rand(*shape), )
    try:
        with torch.no_grad():
            result = model_complexity(model, inputs, args.max_depth)
    except Exception as exc:
        raise UserError(
            f'{type(model).__name__} of {args.config} cannot be counted at '
            f'input {tuple(shape)}: {type(exc).__name__}: {exc}. Its forward '
            "must take an image batch alone (mode='tensor'); try an input "
            'size that is a multiple of the patch size.') from exc
    print(result['table'])
    line = '=' * 40
    print(f'{line}\nInput shape: {tuple(shape)}\n'
          f'Flops: {format_count(result["flops"])} '
          f'({result["flops"]} multiply-adds)\n'
          f'Params: {format_count(result["params"])} '
          f'({result["params"]})\n{line}')
    if result['uncounted']:
        ops = ', '.join(f'{op} x{n}' for op, n in result['uncounted'])
        print(f'Not counted (no FLOP formula): {ops}')
    print('FLOPs depend on the input size and count multiply-adds of the '
          'forward pass only; check them before quoting them.')


if __name__ == '__main__':
    cli_main(main)
