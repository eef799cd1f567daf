"""Fold trained LoRA adapters into the weights of a classifier checkpoint.

The output loads into the model of the same config without ``model.lora``::

    python tools/merge_lora.py configs/classification/lora.py \
        work_dirs/lora/epoch_10.pth work_dirs/lora/merged.pth
"""
import argparse
import sys

from dinov3_mm.apis import CheckpointError
from dinov3_mm.apis.lora_merge import merge_lora_checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='training config (with model.lora)')
    parser.add_argument('checkpoint', help='checkpoint trained with it')
    parser.add_argument('out', help='output checkpoint path')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        out = merge_lora_checkpoint(args.config, args.checkpoint, args.out)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'Wrote merged checkpoint to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
