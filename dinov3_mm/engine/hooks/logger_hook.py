"""mmengine's LoggerHook, with a first training line within seconds."""
from typing import Optional

from mmengine.hooks import LoggerHook

from dinov3_mm.registry import HOOKS


@HOOKS.register_module()
class EpochAwareLoggerHook(LoggerHook):
    """A :class:`~mmengine.hooks.LoggerHook` whose training log keeps pace
    with short epochs.

    mmengine logs every ``interval`` iterations; when an epoch has fewer
    iterations than that, the first line appears only when the epoch ends.
    This hook also logs the first training iteration of a run (fresh or
    resumed), and in epoch-based training it logs every ``min(interval,
    iterations per epoch)`` iterations. Validation and test logging are
    mmengine's, with ``interval``.

    Takes the arguments of :class:`~mmengine.hooks.LoggerHook`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._first_iter: Optional[int] = None

    def before_train(self, runner) -> None:
        self._first_iter = runner.iter

    def train_interval(self, runner) -> int:
        """Iterations between training log lines."""
        if not runner.log_processor.by_epoch:
            return self.interval
        try:
            per_epoch = len(runner.train_dataloader)
        except TypeError:  # a dataloader without a length
            return self.interval
        return max(1, min(self.interval, per_epoch))

    def _logs_anyway(self, runner, batch_idx: int, interval: int) -> bool:
        """Whether mmengine's rule logs this iteration at ``interval``."""
        if self.every_n_inner_iters(batch_idx, interval):
            return True
        return (self.end_of_epoch(runner.train_dataloader, batch_idx)
                and (not self.ignore_last
                     or len(runner.train_dataloader) <= interval))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        interval = self.train_interval(runner)
        if (runner.iter == self._first_iter
                and not self._logs_anyway(runner, batch_idx, interval)):
            tag, log_str = runner.log_processor.get_log_after_iter(
                runner, batch_idx, 'train')
            runner.logger.info(log_str)
            runner.visualizer.add_scalars(
                tag, step=runner.iter + 1, file_path=self.json_log_path)
        configured, self.interval = self.interval, interval
        try:
            super().after_train_iter(runner, batch_idx, data_batch, outputs)
        finally:
            self.interval = configured
