"""mmengine's CheckpointHook with an atomically written ``last_checkpoint``."""
import os.path as osp
import tempfile

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

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
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        with tempfile.TemporaryDirectory() as scratch:
            super()._save_checkpoint_with_step(
                _WorkDirElsewhere(runner, scratch), step, meta)
        if is_main_process():
            atomic_write_bytes(str(self.last_ckpt).encode(),
                               osp.join(runner.work_dir, 'last_checkpoint'))
