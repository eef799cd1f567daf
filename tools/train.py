"""Train a dinov3_mm model from a config file.

Examples::

    python tools/train.py configs/demo/xxx.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --amp
    python tools/train.py CONFIG --resume                 # latest in work dir
    python tools/train.py CONFIG --resume path/epoch_3.pth
    python tools/train.py CONFIG --cfg-options train_cfg.max_epochs=5
    python tools/train.py CONFIG --auto-scale-lr --cfg-options train_dataloader.batch_size=64
    python tools/train.py CONFIG --compile                # torch.compile
    tools/dist_train.sh CONFIG 8                          # 8 GPUs, torchrun

On Linux the tool has glibc's malloc keep freed memory for the next step
(:func:`dinov3_mm.utils.malloc.retain_freed_memory`: CPU steps of a ViT-S/16
or ConvNeXt-T 5-8 % faster); ``DINOV3_MM_MALLOC=default`` turns it off.
"""
import argparse
import os

# Imported first: registers the dinov3_mm registries and lets torch's
# weights_only loader read mmengine checkpoints (resume).
import dinov3_mm  # noqa: F401
from mmengine.config import Config

from dinov3_mm.datasets.image_folder import EmptyClassError
from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.engine.config_check import ConfigError
from dinov3_mm.engine.runner_cfg import (apply_common_options, apply_resume,
                                         enable_amp, merged_config_or_exit,
                                         run_or_exit)
from dinov3_mm.engine.optimizers.fused import prefer_fused_optimizer
from dinov3_mm.engine.tool_options import (FSDP_PRECISIONS,
                                           enable_auto_scale_lr,
                                           enable_compile, enable_fsdp)
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.cli import add_debug_argument, cli_main
from dinov3_mm.utils.malloc import retain_freed_memory


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments of the training tool."""
    parser = argparse.ArgumentParser(description='Train a dinov3_mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir',
        help='directory for logs and checkpoints; defaults to the config\'s '
        'work_dir or ./work_dirs/<config name>')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: without a value, from the latest checkpoint '
        'in the work dir; with a value, from that checkpoint')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (AmpOptimWrapper; bfloat16 when '
        'CUDA is not available)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by (processes x batch size) / '
        'auto_scale_lr.base_batch_size (default base: the config file\'s '
        'train_dataloader.batch_size x 1 process)')
    parser.add_argument(
        '--compile',
        nargs='?',
        const='inductor',
        metavar='BACKEND',
        help='torch.compile the training step (mmengine\'s cfg.compile); '
        'optionally the backend, e.g. aot_eager (default: inductor)')
    parser.add_argument(
        '--fsdp',
        nargs='?',
        const='fp32',
        choices=sorted(FSDP_PRECISIONS),
        metavar='PRECISION',
        help='shard weights, gradients and optimizer state over the '
        'processes (FSDP2; with tools/dist_train.sh), optionally computing '
        'in bf16 or fp16: tools/dist_train.sh CONFIG 8 --fsdp bf16')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config entries, e.g. '
        'train_cfg.max_epochs=5 optim_wrapper.optimizer.lr=1e-4')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank).
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
    if args.auto_scale_lr:  # before --cfg-options change the batch size
        enable_auto_scale_lr(cfg, args.config)
    apply_common_options(cfg, args.config, args.cfg_options, args.launcher,
                         args.work_dir, mode='train')
    apply_resume(cfg, args.resume)
    if args.verbose:
        cfg.verbose = True
    if args.amp:
        enable_amp(cfg, args.config)
    if args.compile:
        enable_compile(cfg, args.compile)
    if args.fsdp:
        enable_fsdp(cfg, args.fsdp)
    if cfg.get('strategy') is None:  # FlexibleRunner strategies: their own
        prefer_fused_optimizer(cfg.get('optim_wrapper'))
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merged_config_or_exit(args, merge_args)
    retain_freed_memory()
    run_or_exit(cfg, 'train')


if __name__ == '__main__':
    cli_main(main,
             user_errors=(ConfigError, CheckpointError, EmptyClassError))
