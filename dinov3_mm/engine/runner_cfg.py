"""Turning command-line options into a Runner config, and building the Runner."""
import os
import os.path as osp
import sys
from typing import Callable, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

from dinov3_mm.engine.config_check import ConfigError, check_config
from dinov3_mm.registry import RUNNERS
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.cli import (default_work_dir, require_checkpoint,
                                 require_config)

from .runner.strict_runner import StrictRunner


def apply_common_options(cfg: Config,
                         config_path: str,
                         cfg_options: Optional[dict] = None,
                         launcher: str = 'none',
                         work_dir: Optional[str] = None,
                         mode: Optional[str] = None) -> Config:
    """Options shared by training and testing, then the config checks.

    Args:
        cfg (Config): The loaded config (changed in place).
        config_path (str): Its file, for the default work dir and messages.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        work_dir (str, optional): Overrides the config's ``work_dir``; the
            default is ``work_dirs/<config name>``.
        mode (str, optional): ``'train'``, ``'val'`` or ``'test'``: also
            check the ``data_root`` of the datasets that mode builds.

    Raises:
        ConfigError: The merged config has a misspelt top-level key, an
            unknown argument or a wrongly typed value (see
            :func:`~dinov3_mm.engine.config_check.check_config`).
    """
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.setdefault('default_scope', 'dinov3_mm')
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config_path)
    check_config(cfg, config_path, mode=mode)
    return cfg


def apply_resume(cfg: Config, resume: Optional[str]) -> Config:
    """``resume='auto'``: latest checkpoint of the work dir; a path: that one."""
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    return cfg


def enable_amp(cfg: Config, config_path: str) -> Config:
    """Switch the optimizer wrapper to ``AmpOptimWrapper`` (bf16 on the CPU)."""
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is None:
        raise ValueError(f'--amp needs an `optim_wrapper` in {config_path}; '
                         'the config has none.')
    if optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return cfg
    optim_wrapper.type = 'AmpOptimWrapper'
    optim_wrapper.setdefault('loss_scale', 'dynamic')
    if not torch.cuda.is_available():
        optim_wrapper.setdefault('dtype', 'bfloat16')
    return cfg


def add_dump_results(cfg: Config, out: str, config_path: str) -> Config:
    """Append mmengine's ``DumpResults`` metric writing predictions to ``out``."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out}')
    evaluator = cfg.get('test_evaluator')
    if evaluator is None:
        raise ValueError(f'{config_path} has no `test_evaluator`; --out needs '
                         'one to dump predictions.')
    dump = ConfigDict(type='DumpResults', out_file_path=out)
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


def prepare_cpu_distributed(cfg: Config) -> Config:
    """Let ``torchrun`` jobs run on machines without CUDA.

    mmengine's pytorch launcher assumes a GPU per process. Without CUDA this
    starts the gloo process group from the torchrun environment and wraps
    the model in DDP without ``device_ids``.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return cfg
    if cfg.launcher != 'pytorch':
        raise ValueError(f'Launcher {cfg.launcher!r} needs CUDA here; use '
                         "torchrun (--launcher pytorch) on CPU machines.")
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    env_cfg.setdefault('dist_cfg', ConfigDict())['backend'] = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        type='MMDistributedDataParallel')
    if 'DistributedDataParallel' in str(wrapper.get('type')):
        wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    return cfg


def build_runner(cfg: Config) -> Runner:
    """The config's ``runner_type`` from the registry, else
    :class:`~dinov3_mm.engine.runner.StrictRunner` (strict checkpoint
    loading, careful resuming)."""
    prepare_cpu_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return StrictRunner.from_cfg(cfg)


def finish_distributed() -> None:
    """Wait for every rank, then tear the process group down.

    A rank that leaves while others still save checkpoints or gather
    results, with its gloo group alive, can abort at interpreter exit
    ("terminate called without an active exception"). Call after a
    successful run; on failure torchrun stops the other ranks anyway.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_input_files(args) -> None:
    """The config, and the ``checkpoint`` / ``--resume`` file when given,
    exist; else a :class:`~dinov3_mm.utils.cli.UserError` naming the path."""
    require_config(args.config)
    if getattr(args, 'checkpoint', None):
        require_checkpoint(args.checkpoint)
    resume = getattr(args, 'resume', None)
    if resume and resume != 'auto':
        require_checkpoint(resume, '--resume')


def merged_config_or_exit(args, merge_args: Callable) -> Config:
    """``merge_args(Config.fromfile(args.config), args)``; a
    :class:`ConfigError` ends the process with its message and exit code 2.

    Raises:
        UserError: The config or the checkpoint does not exist
            (:func:`check_input_files`).
    """
    check_input_files(args)
    try:
        return merge_args(Config.fromfile(args.config), args)
    except ConfigError as exc:
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(2)


def run_or_exit(cfg: Config, method: str) -> None:
    """Build the Runner and call ``method`` (``'train'``/``'test'``), then
    :func:`finish_distributed`. A checkpoint that is missing, unreadable or
    does not fit ends the process with its message and exit code 1."""
    try:
        getattr(build_runner(cfg), method)()
    except (CheckpointError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(1)
    finish_distributed()
