"""Convert DINOv3 backbone weights between official, Hugging Face and dinov3_mm.

Examples::

    python tools/convert_checkpoint.py dinov3_vits16_pretrain_lvd1689m.pth \
        work_dirs/vits16_hf --to hf
    python tools/convert_checkpoint.py path/to/hf_model_dir \
        work_dirs/vits16.pth --to official
    python tools/convert_checkpoint.py work_dirs/x/epoch_3.pth \
        work_dirs/x/epoch_3_merged.pth --merge-shards
"""
import argparse
import ast

from dinov3_mm.apis import CheckpointError
from dinov3_mm.apis.checkpoint_conversion import (BACKBONES,
                                                  convert_checkpoint,
                                                  merge_sharded_checkpoint)
from dinov3_mm.models.backbones.weights import FORMATS
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 require_checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official .pth, dinov3_mm .pth, '
                        '.safetensors file or Hugging Face model directory')
    parser.add_argument('dst', help='output file, or directory for --to hf')
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument('--to', choices=FORMATS,
                      help='write the backbone in this format')
    mode.add_argument('--merge-shards', action='store_true',
                      help='write a sharded training checkpoint (tools/'
                      'train.py --fsdp) as one file with the whole model, '
                      'optimizer and scheduler state')
    parser.add_argument('--backbone', choices=BACKBONES,
                        help='backbone type (inferred when omitted)')
    parser.add_argument('--arch', help='arch name, or a Python dict literal '
                        '(inferred when omitted)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require_checkpoint(args.src, 'hf')
    if args.merge_shards:
        path, shards = merge_sharded_checkpoint(args.src, args.dst)
        print(f'Merged {shards} shards of {args.src} into {path}')
        return 0
    arch = args.arch
    if arch is not None and arch.lstrip().startswith('{'):
        try:
            arch = ast.literal_eval(arch)
        except (ValueError, SyntaxError) as exc:
            raise UserError(
                f'--arch {args.arch} is not a Python dict literal ({exc}); '
                'write e.g. --arch "{\'embed_dims\': 384, \'num_layers\': '
                '12, \'num_heads\': 6}"', exit_code=2) from exc
    path, cfg = convert_checkpoint(args.src, args.dst, args.to,
                                   backbone=args.backbone, arch=arch)
    print(f'Wrote {args.to} checkpoint of {cfg["type"]}(arch={cfg["arch"]!r}) '
          f'to {path}')
    return 0


if __name__ == '__main__':
    cli_main(main, user_errors=(CheckpointError, FileNotFoundError))
