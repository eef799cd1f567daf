"""Fold trained LoRA adapters into the weights of a checkpoint.

For a config with ``model.lora`` (configs/classification/vits16_lora_shapes.py,
configs/ssl/vits16_lora_continue_shapes.py)::

    python tools/merge_lora.py configs/classification/vits16_lora_shapes.py \\
        work_dirs/vits16_lora_shapes/epoch_10.pth \\
        work_dirs/vits16_lora_shapes/merged.pth

The merged checkpoint loads into the model of the same config without LoRA,
e.g. ``python tools/test.py configs/classification/vits16_lora_shapes.py
work_dirs/vits16_lora_shapes/merged.pth --cfg-options model.lora=None``.
"""
import argparse

from dinov3_mm.apis import CheckpointError
from dinov3_mm.apis.lora_merge import (NoLoraError, check_has_lora,
                                      merge_lora_checkpoint)
from dinov3_mm.utils.cli import (add_debug_argument, cli_main,
                                 require_checkpoint, require_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='training config (with model.lora)')
    parser.add_argument('checkpoint', help='checkpoint trained with it')
    parser.add_argument('out', help='output checkpoint path')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = check_has_lora(require_config(args.config))
    require_checkpoint(args.checkpoint)
    out = merge_lora_checkpoint(cfg, args.checkpoint, args.out)
    print(f'Wrote merged checkpoint to {out}; load it with the same config '
          'and --cfg-options model.lora=None')
    return 0


if __name__ == '__main__':
    cli_main(main, user_errors=(CheckpointError, NoLoraError))
