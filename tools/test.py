"""Evaluate a trained dinov3_mm model on the config's test set.

Examples::

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --out work_dirs/preds.pkl
    python tools/test.py CONFIG CHECKPOINT --show-dir work_dirs/show --tta
    tools/dist_test.sh CONFIG CHECKPOINT 8

As ``tools/train.py`` does, the tool has glibc's malloc keep freed memory
(:func:`dinov3_mm.utils.malloc.retain_freed_memory`; ViT-S/16 inference on
the CPU 6-11 % faster); ``DINOV3_MM_MALLOC=default`` turns it off.
"""
import argparse
import os

# Imported first: registers the dinov3_mm registries and lets torch's
# weights_only loader read mmengine checkpoints.
import dinov3_mm  # noqa: F401
from mmengine.config import Config

from dinov3_mm.datasets.image_folder import EmptyClassError
from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.engine.config_check import ConfigError
from dinov3_mm.engine.runner_cfg import (add_dump_results,
                                         apply_common_options,
                                         merged_config_or_exit, run_or_exit)
from dinov3_mm.engine.tool_options import apply_show_dir, enable_tta
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.cli import add_debug_argument, cli_main
from dinov3_mm.utils.malloc import retain_freed_memory


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the test tool."""
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a dinov3_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='directory for logs and metrics; defaults to the config\'s '
        'work_dir or ./work_dirs/<config name>')
    parser.add_argument(
        '--out',
        help='also dump the raw predictions to this pickle file (.pkl)')
    parser.add_argument(
        '--show-dir',
        help='save a picture of every prediction here (classification: '
        'predicted class, score and true class; segmentation: image, ground '
        'truth, prediction and errors)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: the image and its horizontal flip '
        '(classifiers: averaged probabilities, segmentors: test_cfg.flip), '
        'or the config\'s tta_model + tta_pipeline')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config entries, e.g. test_dataloader.batch_size=8')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='also print the environment, the full config and the hook '
        'order on the console (they are always in the log file)')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line arguments to ``cfg``."""
    apply_common_options(cfg, args.config, args.cfg_options, args.launcher,
                         args.work_dir, mode='test')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.verbose:
        cfg.verbose = True
    if args.out is not None:
        add_dump_results(cfg, args.out, args.config)
    if args.tta:
        print(f'--tta: {enable_tta(cfg, args.config)}')
    if args.show_dir:
        apply_show_dir(cfg, args.show_dir)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merged_config_or_exit(args, merge_args)
    retain_freed_memory()
    run_or_exit(cfg, 'test')


if __name__ == '__main__':
    cli_main(main,
             user_errors=(ConfigError, CheckpointError, EmptyClassError))
