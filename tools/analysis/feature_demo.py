"""Extract DINOv3 features from generated images and save PCA feature maps.

Example::

    python tools/analysis/feature_demo.py --out work_dirs/demo
    python tools/analysis/feature_demo.py --checkpoint dinov3_vits16.pth
"""
import argparse
import json
import sys

from dinov3_mm.apis.demo import run_feature_demo


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='work_dirs/demo')
    parser.add_argument('--backbone', default='DINOv3ViT',
                        choices=['DINOv3ViT', 'DINOv3ConvNeXt'])
    parser.add_argument('--arch', default='small')
    parser.add_argument('--checkpoint', help='official .pth, HF directory or '
                        'dinov3_mm checkpoint (default: random init)')
    parser.add_argument('--num-images', type=int, default=6)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--normalization', default='lvd1689m',
                        choices=['lvd1689m', 'sat493m'])
    parser.add_argument('--fp32', action='store_true',
                        help='disable bf16 autocast')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    summary = run_feature_demo(
        args.out, backbone=args.backbone, arch=args.arch,
        checkpoint=args.checkpoint, num_images=args.num_images,
        img_size=args.img_size, normalization=args.normalization,
        bf16=not args.fp32)
    print(json.dumps({k: v for k, v in summary.items()
                      if k != 'cls_cosine_similarity'}, indent=2))
    print(f'Wrote {summary["out_dir"]}/overview.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
