"""Label-free anomaly detection on an MVTec-style folder.

Fits a PatchCore-style memory bank on ``<category>/train/good`` with a
frozen DINOv3 backbone, scores ``<category>/test`` and writes, under the
output folder, ``<category>/scores.csv``, anomaly-map and overlay PNGs and
``metrics.json`` (image and pixel AUROC), and prints the AUROC table.

Examples::

    python projects/industrial/tools/anomaly_detect.py data/mvtec_like \\
        --config configs/industrial/vits16_patchcore_mvtec_like.py \\
        --checkpoint checkpoints/dinov3_vits16.pth --out-dir work_dirs/ad
    python projects/industrial/tools/anomaly_detect.py data/mvtec_like \\
        --arch small --layers -4 -1 --img-size 224 --out-dir work_dirs/ad
"""
import argparse
import json
import math
import os.path as osp
import sys

try:
    import dinov3_mm_industrial  # noqa: F401
except ImportError:  # a checkout without `pip install -e projects/industrial`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import dinov3_mm_industrial  # noqa: F401
from mmengine.config import Config

from dinov3_mm.engine import CfgOptionsAction

from dinov3_mm_industrial.anomaly import run_anomaly_detection
from dinov3_mm_industrial.anomaly.build import (build_detector,
                                                config_from_backbone,
                                                parse_arch)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the anomaly detection tool."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', nargs='?',
                        help='category folder or folder of categories '
                        "(default: the config's data_root)")
    spec = parser.add_mutually_exclusive_group()
    spec.add_argument('--config', help='anomaly config file')
    spec.add_argument('--arch', help='DINOv3ViT arch name (small, base...) '
                      'or JSON dict, when no config is given')
    parser.add_argument('--layers', type=int, nargs='+', default=None,
                        help='block indices whose patch maps are used '
                        '(with --arch; default -1)')
    parser.add_argument('--checkpoint', help='backbone weights: official '
                        '.pth, Hugging Face folder or dinov3_mm checkpoint')
    parser.add_argument('--img-size', type=int, help='square input side')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--category', nargs='+', dest='categories',
                        help='only these categories')
    parser.add_argument('--out-dir', help='output folder (default: the '
                        "config's work_dir)")
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument('--no-pixel-metrics', action='store_true',
                        help='skip masks and pixel AUROC')
    parser.add_argument('--no-maps', action='store_true',
                        help='do not write map and overlay PNGs')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. '
                        'model.sigma=2 model.subsample.ratio=0.25')
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> Config:
    """The config file, or one built from ``--arch``; CLI values win."""
    if args.config:
        cfg = Config.fromfile(args.config)
    else:
        cfg = config_from_backbone(parse_arch(args.arch or 'small'),
                                   tuple(args.layers or (-1, )))
    if args.layers and args.config:
        cfg.model.backbone.out_indices = tuple(args.layers)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    for key, value in (('data_root', args.data_root),
                       ('img_size', args.img_size),
                       ('batch_size', args.batch_size),
                       ('categories', args.categories),
                       ('work_dir', args.out_dir)):
        if value is not None:
            cfg[key] = value
    if not cfg.get('data_root'):
        raise SystemExit('No data folder: pass DATA_ROOT or set data_root in '
                         'the config.')
    return cfg


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args)
    detector = build_detector(cfg.model, args.checkpoint, args.device)
    results = run_anomaly_detection(
        detector, cfg.data_root, int(cfg.get('img_size', 224)),
        out_dir=cfg.get('work_dir'), categories=cfg.get('categories'),
        batch_size=int(cfg.get('batch_size', 8)),
        pixel_metrics=not args.no_pixel_metrics, save_maps=not args.no_maps)
    print(f'{"category":<16} {"image AUROC":>12} {"pixel AUROC":>12}')
    for name, m in results.items():
        cells = [m.get(k, math.nan) for k in ('image_auroc', 'pixel_auroc')]
        print(f'{name:<16} ' + ' '.join(f'{v:>12.4f}' for v in cells))
    if cfg.get('work_dir'):
        print('metrics:', osp.join(cfg.work_dir, 'metrics.json'))
    print(json.dumps(results['mean']))
    return results


if __name__ == '__main__':
    main()
