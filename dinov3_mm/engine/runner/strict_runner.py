"""mmengine's Runner with strict checkpoint loading and careful resuming."""
import logging
import os.path as osp
from typing import Callable, Optional, Union
from unittest import mock

import mmengine.runner.runner as mmengine_runner
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.utils.dl_utils import collect_env

from dinov3_mm.engine.fsdp import (is_sharded_model, place_checkpoint,
                                   read_for_rank, save_rank_shards)
from dinov3_mm.registry import RUNNERS
from dinov3_mm.utils.atomic_write import remove_stale_temp_files
from dinov3_mm.utils.checkpoint_io import load_weights_only
from dinov3_mm.utils.sharded_checkpoint import is_shard_index
from dinov3_mm.utils.state_dict_loading import (DEFAULT_REVISE_KEYS,
                                                load_model_weights)

from .config_text import TextCachedConfig
from .console import file_only_below, restore_console, runtime_environment
from .resume_checkpoint import find_resume_checkpoint


@RUNNERS.register_module()
class StrictRunner(Runner):
    """A Runner that never trains or evaluates on a checkpoint that does not fit.

    Differences from :class:`mmengine.runner.Runner`:

    * ``load_from`` (``tools/test.py CHECKPOINT``, fine-tuning from a
      checkpoint) and resuming load strictly: a checkpoint whose keys or
      shapes do not match the config's model is refused with a report of
      the missing, unexpected and mismatched keys naming the config and the
      file. Set ``load_strict = False`` in the config to load only what fits
      (the rest is reported as a warning).
    * Checkpoints are read with ``weights_only=True`` (see
      :mod:`dinov3_mm.engine.checkpoint_loaders`).
    * ``resume=True`` without a path resumes from what ``last_checkpoint``
      names if that loads, else from the newest checkpoint of the work dir
      that loads, and says so (:func:`find_resume_checkpoint`).
    * Temporary files left in the work dir by a killed checkpoint write are
      removed when the runner starts.
    * A model sharded by :class:`~dinov3_mm.engine.fsdp.FSDPWrapper` saves
      sharded checkpoints (every rank its rows, the index last) and loads
      them, or unsharded ones, into its shards.
    * The config's text (log, dumps, checkpoint ``meta``) is formatted once
      (:class:`~.config_text.TextCachedConfig`), not at every use.
    * A calm console: what is logged at INFO while the runner is built (the
      environment, the whole config, the hook order) goes to the log file
      ``<work_dir>/<timestamp>/<timestamp>.log`` only; one line names that
      file. Warnings still show. ``verbose=True`` in the config
      (``tools/train.py --verbose``) shows everything again. Without CUDA
      the runtime environment says ``Processes``, not ``GPU number``.

    Built from a config by ``Runner.from_cfg``; the extra config keys are
    ``load_strict`` (bool, default True) and ``verbose`` (bool, default
    False).
    """

    def __init__(self, *args, **kwargs) -> None:
        if isinstance(kwargs.get('cfg'), Config):
            kwargs['cfg'] = TextCachedConfig.of(kwargs['cfg'])
        cfg = kwargs.get('cfg') or {}
        self._verbose = bool(cfg.get('verbose', False))
        self._console_mute = None
        try:
            super().__init__(*args, **kwargs)
        finally:
            restore_console(self._console_mute)
            self._console_mute = None
        self.load_strict = bool(self.cfg.get('load_strict', True))
        if not self._verbose:
            self.logger.info(
                'Environment, config and hook order are in '
                f'{osp.join(self.log_dir, self.timestamp + ".log")} '
                '(--verbose or verbose=True prints them here).')
        if is_main_process():
            for path in remove_stale_temp_files(self.work_dir):
                self.logger.warning(
                    f'Removed {path}, left by an interrupted checkpoint '
                    'write.')

    def build_logger(self, log_level: Union[int, str] = 'INFO',
                     log_file: Optional[str] = None, **kwargs):
        """mmengine's logger; while the runner is being built its INFO
        records reach the log file only, unless ``verbose``."""
        logger = super().build_logger(log_level, log_file, **kwargs)
        if not self._verbose and self._console_mute is None:
            self._console_mute = file_only_below(logger, logging.WARNING)
        return logger

    def _log_env(self, env_cfg: dict) -> None:
        """Log the system and runtime environment and the config."""
        runtime = runtime_environment(env_cfg, self._randomness_cfg,
                                      self._seed, self._launcher,
                                      self._distributed, self._world_size)
        rule = '-' * 60

        def block(entries: dict) -> str:
            return ''.join(f'\n    {key}: {value}'
                           for key, value in entries.items())

        self.logger.info(f'\n{rule}\nSystem environment:'
                         f'{block(collect_env())}\n\nRuntime environment:'
                         f'{block(runtime)}\n{rule}\n')
        if self.cfg._cfg_dict:
            self.logger.info(f'Config:\n{self.cfg.pretty_text}')

    def load_or_resume(self) -> None:
        """Load ``load_from`` or resume, picking a checkpoint that loads."""
        if self._has_loaded:
            return
        if self._resume and self._load_from is None:
            resume_from, note = find_resume_checkpoint(self.work_dir)
            if note:
                self.logger.warning(f'--resume: {note}.')
            if resume_from is None:
                return
            self.logger.info(f'Resuming from {resume_from}.')
            self.resume(resume_from)
        elif self._resume:
            self.resume(self._load_from)
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
        else:
            return
        self._has_loaded = True

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: Optional[bool] = None,
                        revise_keys: list = list(DEFAULT_REVISE_KEYS)):
        """Load a checkpoint into the model, strictly unless ``load_strict``
        is False in the config (or ``strict=False`` is passed).

        Raises:
            CheckpointMismatchError: Keys or shapes do not match (strict).
            CheckpointError: The file is empty, truncated or holds objects
                that weights-only loading refuses.
        """
        strict = self.load_strict if strict is None else strict
        model = self.model
        # DDP-style wrappers and mmengine's TTA models hold the real model.
        if is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        if is_sharded_model(self.model):
            checkpoint = self._read_into_shards(filename, model)
        else:
            checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        diff = load_model_weights(
            model, checkpoint, strict=strict, checkpoint_name=filename,
            config_name=self.cfg.filename, revise_keys=revise_keys)
        self._has_loaded = True
        level = logging.INFO if diff.exact else logging.WARNING
        self.logger.log(level, f'Loaded checkpoint {filename} '
                        f'({diff.matched} tensors).')
        return checkpoint

    def _init_model_weights(self) -> None:
        """mmengine's weight init, except for a sharded model: the
        :class:`~dinov3_mm.engine.fsdp.FSDPWrapper` initialised it before
        sharding."""
        if not is_sharded_model(self.model):
            super()._init_model_weights()

    def _read_into_shards(self, filename: str, model) -> dict:
        """A checkpoint with its tensors placed like the sharded model's."""
        checkpoint = load_weights_only(filename, merge=False)
        local = False
        if is_shard_index(checkpoint):
            checkpoint, local = read_for_rank(filename, checkpoint)
        optimizer = (self.optim_wrapper.optimizer if isinstance(
            self.optim_wrapper, OptimWrapper) else None)
        return place_checkpoint(checkpoint, model, optimizer, local)

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs):
        """mmengine's save; a sharded model saves a sharded checkpoint.

        mmengine builds the checkpoint on rank 0 only; with a sharded model
        every rank builds it (each holds its own rows) and writes its shard
        through :func:`~dinov3_mm.engine.fsdp.save_rank_shards`.
        """
        if not is_sharded_model(self.model):
            return super().save_checkpoint(out_dir, filename, *args,
                                           **kwargs)
        with mock.patch.object(mmengine_runner, 'save_checkpoint',
                               save_rank_shards):
            Runner.save_checkpoint.__wrapped__(self, out_dir, filename,
                                               *args, **kwargs)
