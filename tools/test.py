"""Evaluate a trained dinov3_mm model on the config's test set.

Examples::

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --out work_dirs/preds.pkl
    tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import os
import os.path as osp

# Imported first: registers the dinov3_mm registries and lets torch's
# weights_only loader read mmengine checkpoints.
import dinov3_mm  # noqa: F401
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.runner import Runner

from dinov3_mm.registry import RUNNERS


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
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. test_dataloader.batch_size=8')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


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
    cfg.load_from = args.checkpoint
    cfg.resume = False

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        dump = ConfigDict(type='DumpResults', out_file_path=args.out)
        evaluator = cfg.get('test_evaluator')
        if evaluator is None:
            raise ValueError(f'{args.config} has no `test_evaluator`; '
                             '--out needs one to dump predictions.')
        if isinstance(evaluator, (list, tuple)):
            cfg.test_evaluator = [*evaluator, dump]
        elif 'metrics' in evaluator:  # dict(type='Evaluator', metrics=...)
            metrics = evaluator['metrics']
            if not isinstance(metrics, (list, tuple)):
                metrics = [metrics]
            evaluator['metrics'] = [*metrics, dump]
        else:
            cfg.test_evaluator = [evaluator, dump]
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
