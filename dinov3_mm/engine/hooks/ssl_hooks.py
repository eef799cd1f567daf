"""Hooks of self-supervised training: teacher schedules, collapse alarm."""
import logging
import math
from collections import deque
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from dinov3_mm.registry import HOOKS


def _ssl_model(runner):
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    if not hasattr(model, 'update_teacher'):
        raise TypeError(f'{type(model).__name__} has no teacher to update; '
                        'the SSL hooks work with DINOv3SSL.')
    return model


def cosine_schedule(start: float, end: float, step: int, total: int) -> float:
    """Cosine interpolation from ``start`` (step 0) to ``end`` (step total)."""
    if total <= 0:
        return end
    progress = min(max(step / total, 0.0), 1.0)
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))


@HOOKS.register_module()
class DINOTeacherHook(Hook):
    """EMA teacher update with a cosine momentum schedule and a teacher
    temperature warm-up, as in DINOv3 training.

    After every training iteration the teacher becomes ``m * teacher + (1 -
    m) * student`` with ``m`` rising from ``momentum`` to ``final_momentum``
    over the whole run (cosine). Before every iteration the teacher
    temperature is set: linear from ``warmup_teacher_temp`` to
    ``teacher_temp`` over the warm-up, then constant. The values are logged
    as ``teacher_momentum`` and ``teacher_temp``.

    Args:
        momentum (float): Momentum at the first iteration. Defaults to 0.992.
        final_momentum (float): Momentum at the last one. Defaults to 1.0.
        teacher_temp (float): Temperature after warm-up. Defaults to 0.07.
        warmup_teacher_temp (float): Temperature at iteration 0. Defaults to
            0.04.
        warmup_iters (int, optional): Warm-up length in iterations.
        warmup_epochs (float, optional): Warm-up length in epochs (used when
            ``warmup_iters`` is None). Defaults to 0 (no warm-up).
        gram_refresh_interval (int, optional): Every this many iterations,
            copy the EMA teacher into the Gram teacher (DINOv3's repeated
            Gram-teacher updates); None keeps the starting model.
    """

    priority = 'NORMAL'

    def __init__(self,
                 momentum: float = 0.992,
                 final_momentum: float = 1.0,
                 teacher_temp: float = 0.07,
                 warmup_teacher_temp: float = 0.04,
                 warmup_iters: Optional[int] = None,
                 warmup_epochs: float = 0,
                 gram_refresh_interval: Optional[int] = None) -> None:
        for name, value in (('momentum', momentum),
                            ('final_momentum', final_momentum)):
            if not 0 <= value <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {value}.')
        self.momentum = momentum
        self.final_momentum = final_momentum
        self.teacher_temp = teacher_temp
        self.warmup_teacher_temp = warmup_teacher_temp
        self.warmup_iters = warmup_iters
        self.warmup_epochs = warmup_epochs
        self.gram_refresh_interval = gram_refresh_interval

    def _warmup(self, runner) -> int:
        if self.warmup_iters is not None:
            return int(self.warmup_iters)
        iters_per_epoch = len(runner.train_dataloader)
        return int(round(self.warmup_epochs * iters_per_epoch))

    def temperature(self, step: int, warmup: int) -> float:
        """Teacher temperature at ``step``."""
        if step >= warmup or warmup <= 0:
            return self.teacher_temp
        return self.warmup_teacher_temp + (
            self.teacher_temp - self.warmup_teacher_temp) * step / warmup

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        model = _ssl_model(runner)
        model.teacher_temp = self.temperature(runner.iter,
                                              self._warmup(runner))
        runner.message_hub.update_scalar('train/teacher_temp',
                                         model.teacher_temp)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        model = _ssl_model(runner)
        momentum = cosine_schedule(self.momentum, self.final_momentum,
                                   runner.iter, runner.max_iters)
        model.update_teacher(momentum)
        runner.message_hub.update_scalar('train/teacher_momentum', momentum)
        interval = self.gram_refresh_interval
        if interval and (runner.iter + 1) % interval == 0:
            model.refresh_gram_teacher()
            print_log(f'Gram teacher refreshed from the EMA teacher at '
                      f'iteration {runner.iter + 1}.', logger='current')


@HOOKS.register_module()
class CollapseMonitorHook(Hook):
    """Warn (or stop) when the student's features collapse.

    Watches the model's ``student_std`` output: the std over the batch of the
    L2-normalised student class tokens, about ``1 / sqrt(dim)`` for spread
    features and near 0 when every image maps to the same vector. Its mean
    over the last ``window`` iterations is compared with ``std_floor /
    sqrt(dim)``:

    * during the first ``begin_iter`` iterations nothing is reported (the
      learning-rate warm-up: randomly initialised weights start with
      features that have not spread yet);
    * after that, features that were spread once and fell below the floor
      are a collapse: a warning advises a lower learning rate
      (``action='stop'`` raises instead);
    * features that have stayed below the floor since the start are reported
      once, as not spread yet, pointing at the starting weights instead of
      the learning rate.

    Args:
        std_floor (float): Alarm threshold relative to ``1 / sqrt(dim)``.
            Defaults to 0.1.
        window (int): Iterations averaged. Defaults to 10.
        action (str): ``'warn'`` or ``'stop'``. Defaults to ``'warn'``.
        begin_iter (int, optional): Iterations before the first report.
            Defaults to None: the end of the learning-rate warm-up
            (:func:`lr_warmup_iters`), at least ``window``.
    """

    priority = 'LOW'

    def __init__(self, std_floor: float = 0.1, window: int = 10,
                 action: str = 'warn',
                 begin_iter: Optional[int] = None) -> None:
        if action not in ('warn', 'stop'):
            raise ValueError(f"action must be 'warn' or 'stop', got "
                             f'{action!r}.')
        if begin_iter is not None and begin_iter < 0:
            raise ValueError(f'begin_iter must be >= 0, got {begin_iter}.')
        self.std_floor = std_floor
        self.window = window
        self.action = action
        self.begin_iter = begin_iter
        self.begin = begin_iter or 0
        self.values = deque(maxlen=window)
        self.alarms = 0
        self.spread_seen = False
        self.not_spread_reported = False

    def before_train(self, runner) -> None:
        """Start watching after the warm-up."""
        self.begin = (self.begin_iter if self.begin_iter is not None else
                      max(self.window, lr_warmup_iters(runner)))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not outputs or 'student_std' not in outputs:
            return
        self.values.append(float(outputs['student_std']))
        if len(self.values) < self.window:
            return
        dim = _ssl_model(runner).student.backbone.embed_dims
        floor = self.std_floor / math.sqrt(dim)
        mean = sum(self.values) / len(self.values)
        if mean >= floor:
            self.spread_seen = True
            return
        step = runner.iter + 1
        if step < self.begin:
            return
        measured = (f'student feature std {mean:.5f} (mean of '
                    f'{self.window} iterations) < floor {floor:.5f} = '
                    f'{self.std_floor} / sqrt({dim})')
        if not self.spread_seen:
            if not self.not_spread_reported:
                self.not_spread_reported = True
                print_log(
                    f'Student features have not spread yet at iteration '
                    f'{step}: {measured} since this run started. Usual for '
                    'randomly initialised weights in the first epochs; if it '
                    'lasts, check the starting weights '
                    '(model.backbone.init_cfg or load_from).',
                    logger='current', level=logging.WARNING)
            return
        self.alarms += 1
        message = (f'Collapse alarm at iteration {step}: {measured}, after '
                   'being spread earlier. Lower the learning rate, raise '
                   'the teacher temperature warm-up or check the '
                   'augmentations.')
        if self.action == 'stop':
            raise RuntimeError(message)
        print_log(message, logger='current', level=logging.WARNING)
        self.values.clear()


_NO_END = 10**9  # mmengine's INF: a scheduler without an end


def lr_warmup_iters(runner) -> int:
    """Iterations of the learning-rate warm-up: the end of the ``LinearLR``
    schedulers that start at iteration 0 (0 without one)."""
    schedulers = getattr(runner, 'param_schedulers', None) or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    try:
        per_epoch = len(runner.train_dataloader)
    except TypeError:
        per_epoch = 1
    ends = [
        int(s.end) * (per_epoch if getattr(s, 'by_epoch', False) else 1)
        for s in schedulers
        if type(s).__name__ == 'LinearLR' and getattr(s, 'begin', None) == 0
        and getattr(s, 'end', _NO_END) < _NO_END
    ]
    return max(ends, default=0)
