"""Save what the model sees: a phase's pipeline output, drawn as images.

Each sample goes through the dataset's pipeline (training augmentations
included for ``--phase train``) and is drawn from its packed form:
classification images with their label names, segmentation images with the
mask overlaid and a legend of class names, detection images with their boxes.
A normalisation done in the pipeline is undone::

    python tools/misc/browse_dataset.py configs/demo/convnext_shapes.py \\
        --output-dir work_dirs/browse --phase train --max-samples 20
"""
import argparse
import os
import os.path as osp

import cv2
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.registry import DATASETS
from dinov3_mm.utils import track
from dinov3_mm.utils.cli import (UserError, add_debug_argument, cli_main,
                                 require_config)
from dinov3_mm.visualization.packed_samples import (draw_packed_sample,
                                                    find_normalization)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw the pipeline output of a dataset')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', required=True,
                        help='folder of the pictures')
    parser.add_argument('--phase', choices=['train', 'val', 'test'],
                        default='train',
                        help='dataloader whose dataset and pipeline are '
                        'drawn (default: train)')
    parser.add_argument('--max-samples', type=int, default=20,
                        help='number of samples (default 20; 0: all)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. '
                        'train_dataloader.dataset.data_root=data/mine')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def build_dataset(cfg: Config, phase: str, config_path: str):
    """The ``{phase}_dataloader.dataset`` of the config."""
    loader = cfg.get(f'{phase}_dataloader')
    if not loader or not loader.get('dataset'):
        raise UserError(f'{config_path} has no {phase}_dataloader.dataset; '
                        'pick another --phase.')
    init_default_scope(cfg.get('default_scope') or 'dinov3_mm')
    try:
        return DATASETS.build(loader.dataset)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise UserError(f'{config_path} {phase} dataset: {exc}') from exc


def sample_name(index: int, data_sample) -> str:
    """``00003_<image name>.png``."""
    path = getattr(data_sample, 'metainfo', {}).get('img_path')
    stem = osp.splitext(osp.basename(path))[0] if path else 'sample'
    return f'{index:05d}_{stem}.png'


def main(argv=None) -> None:
    args = parse_args(argv)
    require_config(args.config)
    if args.max_samples < 0:
        raise UserError('--max-samples must be >= 0 (0 draws every sample).')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset = build_dataset(cfg, args.phase, args.config)
    meta = dict(getattr(dataset, 'metainfo', None) or {})
    pipeline = getattr(getattr(dataset, 'pipeline', None), 'transforms', [])
    normalization = find_normalization(pipeline)
    count = len(dataset)
    if args.max_samples:
        count = min(count, args.max_samples)
    if count == 0:
        raise UserError(f'The {args.phase} dataset of {args.config} is empty.')
    os.makedirs(args.output_dir, exist_ok=True)
    for index in track(range(count), f'drawing {args.phase} samples',
                       unit='img'):
        packed = dataset[index]
        try:
            picture = draw_packed_sample(
                packed['inputs'], packed.get('data_samples'),
                meta.get('classes'), meta.get('palette'), normalization)
        except ValueError as exc:
            raise UserError(f'sample {index} of the {args.phase} set: '
                            f'{exc}') from exc
        path = osp.join(args.output_dir,
                        sample_name(index, packed.get('data_samples')))
        if not cv2.imwrite(path, picture[..., ::-1]):
            raise UserError(f'Cannot write {path}; check --output-dir.')
    print(f'Saved {count} {args.phase} samples to {args.output_dir}')


if __name__ == '__main__':
    cli_main(main)
