"""Epoch-based training that resumes mid-epoch without repeating steps."""
from mmengine.runner import EpochBasedTrainLoop

from dinov3_mm.registry import LOOPS


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's epoch loop, continuing an interrupted epoch where it stopped.

    Set it in a config as
    ``train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=...)``
    (no ``by_epoch``: the type already says it).

    mmengine restores the iteration counter from an iteration checkpoint but
    replays the whole interrupted epoch, so a killed and resumed run trains
    more steps than an uninterrupted one. Here the batches the interrupted run
    already trained on are skipped (the seeded sampler yields them in the
    same order), so the run ends after exactly ``max_epochs`` epochs' steps.
    """

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)
        for idx, data_batch in enumerate(self.dataloader):
            if idx < done:
                continue
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
