"""Train a dinov3_mm model from a config file.

Examples::

    python tools/train.py configs/demo/xxx.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --amp
    python tools/train.py CONFIG --resume                 # latest in work dir
    python tools/train.py CONFIG --resume path/epoch_3.pth
    python tools/train.py CONFIG --cfg-options train_cfg.max_epochs=5
    tools/dist_train.sh CONFIG 8                          # 8 GPUs, torchrun
"""
import argparse
import os
import os.path as osp

# Imported first: registers the dinov3_mm registries and lets torch's
# weights_only loader read mmengine checkpoints (resume).
import dinov3_mm  # noqa: F401
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from dinov3_mm.registry import RUNNERS


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
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. '
        'train_cfg.max_epochs=5 optim_wrapper.optimizer.lr=1e-4')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _enable_amp(cfg: Config) -> None:
    optim_wrapper = cfg.optim_wrapper
    if optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return
    optim_wrapper.type = 'AmpOptimWrapper'
    optim_wrapper.setdefault('loss_scale', 'dynamic')
    import torch
    if not torch.cuda.is_available():
        # float16 autocast is GPU-only; bfloat16 works on CPU.
        optim_wrapper.setdefault('dtype', 'bfloat16')


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line arguments to ``cfg``."""
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.setdefault('default_scope', 'dinov3_mm')
    cfg.launcher = args.launcher

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.amp:
        if cfg.get('optim_wrapper') is None:
            raise ValueError(
                f'--amp needs an `optim_wrapper` in {args.config}; the '
                'config has none.')
        _enable_amp(cfg)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
