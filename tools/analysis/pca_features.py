"""Show backbone patch features of your images as PCA colour maps.

For each image a PNG holds the (resized) image and, to its right, its patch
features coloured by their first three principal components, fitted jointly
over all given images (the same colour means similar features everywhere).

The backbone is ``model.backbone`` of any classifier or segmentor config
(with its checkpoint), or a bare DINOv3 ViT / ConvNeXt with released weights
(official ``.pth``, Hugging Face directory or dinov3_mm checkpoint)::

    python tools/analysis/pca_features.py path/to/images --out work_dirs/pca \\
        --config configs/segmentation/vit_unet_seg_shapes.py \\
        --checkpoint work_dirs/vit_unet_seg_shapes/epoch_30.pth
    python tools/analysis/pca_features.py path/to/images --out work_dirs/pca \\
        --arch small --weights checkpoints/dinov3_vits16.pth

``--arch`` also takes a dict such as ``'{"embed_dims": 48, "num_layers": 2,
"num_heads": 3}'``; with ``--weights`` and no ``--arch`` the backbone is read
from the weights. SOURCE is an image, a folder (recursive) or a text file
with one image path per line.
"""
import argparse
import ast
import sys

from dinov3_mm.engine.cli_options import CfgOptionsAction

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)
from dinov3_mm.apis.pca_features import run_pca_features


def _arch(value: str):
    value = value.strip()
    if value.startswith('{'):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError) as exc:
            raise argparse.ArgumentTypeError(
                f'--arch {value!r} is not a dict literal: {exc}') from exc
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('source', help='image file, folder, or text file '
                        'with one image path per line')
    parser.add_argument('--out', required=True, help='output folder')
    model = parser.add_argument_group(
        'model', 'either --config [--checkpoint], or --arch/--weights')
    model.add_argument('--config', help='classifier or segmentor config')
    model.add_argument('--checkpoint', help='checkpoint of --config')
    model.add_argument('--backbone', choices=['DINOv3ViT', 'DINOv3ConvNeXt'],
                       help='bare backbone type (default: DINOv3ViT, or '
                       'read from --weights)')
    model.add_argument('--arch', type=_arch,
                       help='bare backbone arch name or dict (default: '
                       'small, or read from --weights)')
    model.add_argument('--weights', help='bare backbone weights (default: '
                       'random init)')
    parser.add_argument('--img-size', type=int, default=448,
                        help='longer side of the model input (default 448)')
    parser.add_argument('--normalization', choices=['lvd1689m', 'sat493m'],
                        help='default: the config\'s data preprocessor, '
                        'else lvd1689m')
    parser.add_argument('--fp32', action='store_true',
                        help='disable bf16 autocast')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='overrides of --config, key=value')
    args = parser.parse_args(argv)
    if args.config and (args.arch or args.weights or args.backbone):
        parser.error('give --config [--checkpoint] or --arch/--weights, '
                     'not both')
    if args.checkpoint and not args.config:
        parser.error('--checkpoint needs --config (use --weights for a bare '
                     'backbone)')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    written = run_pca_features(
        args.source, args.out, config=args.config,
        checkpoint=args.checkpoint, backbone=args.backbone, arch=args.arch,
        weights=args.weights, img_size=args.img_size,
        normalization=args.normalization, bf16=not args.fp32,
        device=args.device, cfg_options=args.cfg_options)
    print(f'Wrote {len(written)} PCA pictures to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
