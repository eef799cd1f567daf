"""mmengine's CheckpointHook with an atomically written ``last_checkpoint``."""
import os
import os.path as osp
import tempfile

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from dinov3_mm.engine.fsdp import orphan_shards
from dinov3_mm.engine.runner.console import (file_only_matching,
                                             restore_console)
from dinov3_mm.registry import HOOKS
from dinov3_mm.utils.atomic_write import atomic_write_bytes


class _WorkDirElsewhere:
    """A runner seen with another ``work_dir``; everything else forwarded."""

    def __init__(self, runner, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name):
        return getattr(self._runner, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` whose ``last_checkpoint`` record
    is replaced atomically, like the checkpoints themselves.

    mmengine rewrites ``work_dir/last_checkpoint`` in place with a plain
    ``open(..., 'w')``: a kill at that moment leaves it empty. Here mmengine's
    own save runs with the record pointed at a scratch folder, and the real
    record is then written through a temporary file and a rename. Arguments
    are :class:`~mmengine.hooks.CheckpointHook`'s.

    Shard files of sharded (FSDP) checkpoints that ``max_keep_ckpts`` or
    a better ``save_best`` checkpoint made obsolete are removed with them.

    mmengine's ``before_train`` builds a ``FileClient`` it does not use
    (without ``file_client_args``), which logs two deprecation warnings on
    every run; they go to the log file only.
    """

    #: mmengine's deprecation notes of that unused FileClient.
    UNUSED_FILE_CLIENT_NOTES = ('"FileClient" will be deprecated',
                                '"HardDiskBackend" is the alias')

    def before_train(self, runner) -> None:
        muted = (file_only_matching(runner.logger,
                                    self.UNUSED_FILE_CLIENT_NOTES)
                 if self.file_client_args is None else None)
        try:
            super().before_train(runner)
        finally:
            restore_console(muted)

    def _save_checkpoint_with_step(self, runner, step, meta):
        with tempfile.TemporaryDirectory() as scratch:
            super()._save_checkpoint_with_step(
                _WorkDirElsewhere(runner, scratch), step, meta)
        if is_main_process():
            atomic_write_bytes(str(self.last_ckpt).encode(),
                               osp.join(runner.work_dir, 'last_checkpoint'))
            self._remove_orphan_shards(runner)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        super()._save_best_checkpoint(runner, metrics)
        if is_main_process():
            self._remove_orphan_shards(runner)

    def _remove_orphan_shards(self, runner) -> None:
        """Shards of sharded checkpoints that mmengine removed (it removes
        only the index, the file it knows)."""
        for path in orphan_shards(self.out_dir):
            os.remove(path)
            runner.logger.debug(f'Removed {path} (its checkpoint is gone).')
