"""CollapseMonitorHook: no learning-rate advice for weights that start
unspread; an alarm when spread features collapse after the warm-up."""
from types import SimpleNamespace

import pytest

from dinov3_mm.engine.hooks import ssl_hooks
from dinov3_mm.engine.hooks.ssl_hooks import (CollapseMonitorHook,
                                              lr_warmup_iters)

DIM = 64
FLOOR = 0.1 / DIM**0.5  # std_floor / sqrt(dim)


class _SSLModel:
    student = SimpleNamespace(backbone=SimpleNamespace(embed_dims=DIM))

    def update_teacher(self, momentum):
        pass


class LinearLR(SimpleNamespace):
    """Stands for mmengine's scheduler (only its name is looked at)."""


def _runner(schedulers=(), per_epoch=10):
    return SimpleNamespace(model=_SSLModel(), iter=0,
                           param_schedulers=list(schedulers),
                           train_dataloader=[None] * per_epoch)


@pytest.fixture
def messages(monkeypatch):
    logged = []
    monkeypatch.setattr(ssl_hooks, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    return logged


def _feed(hook, runner, values):
    for value in values:
        hook.after_train_iter(runner, runner.iter,
                              outputs=dict(student_std=value))
        runner.iter += 1


def test_random_start_is_not_blamed_on_the_learning_rate(messages):
    hook = CollapseMonitorHook(window=5, begin_iter=20)
    runner = _runner()
    hook.before_train(runner)
    _feed(hook, runner, [FLOOR / 10] * 19)
    assert messages == []  # nothing during the warm-up
    _feed(hook, runner, [FLOOR / 10] * 30)
    assert len(messages) == 1 and hook.alarms == 0
    assert 'not spread yet' in messages[0]
    assert 'learning rate' not in messages[0]
    assert 'init_cfg' in messages[0]


def test_collapse_after_spreading_advises_a_lower_lr(messages):
    hook = CollapseMonitorHook(window=5, begin_iter=0)
    runner = _runner()
    hook.before_train(runner)
    _feed(hook, runner, [FLOOR * 5] * 10)
    assert messages == []
    _feed(hook, runner, [FLOOR / 10] * 5)
    assert hook.alarms == 1
    assert messages[0].startswith('Collapse alarm at iteration 15')
    assert 'Lower the learning rate' in messages[0]


def test_stop_raises_on_collapse_only(messages):
    hook = CollapseMonitorHook(window=2, begin_iter=0, action='stop')
    runner = _runner()
    hook.before_train(runner)
    _feed(hook, runner, [FLOOR / 10] * 4)  # never spread: a warning
    assert len(messages) == 1
    _feed(hook, runner, [FLOOR * 5] * 2)
    with pytest.raises(RuntimeError, match='Collapse alarm'):
        _feed(hook, runner, [FLOOR / 10] * 2)


def test_default_start_is_the_end_of_the_lr_warmup(messages):
    warmup = LinearLR(begin=0, end=2, by_epoch=True)
    cosine = SimpleNamespace(begin=2, end=10, by_epoch=True)
    runner = _runner([warmup, cosine], per_epoch=10)
    assert lr_warmup_iters(runner) == 20
    hook = CollapseMonitorHook(window=5)
    hook.before_train(runner)
    assert hook.begin == 20
    hook.before_train(_runner())  # no warm-up: after one window
    assert hook.begin == 5
