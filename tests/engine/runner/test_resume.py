"""Resuming mmengine training while ``torch.load`` runs with weights_only=True.

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, and
mmengine's checkpoints hold more than tensors (HistoryBuffer, numpy arrays
and scalars, ConfigDict). ``dinov3_mm`` allow-lists exactly those on import
(``dinov3_mm.utils.safe_globals``); these tests train, resume and check
that nothing was silently switched to full unpickling.
"""
import copy
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.utils import digit_version
from torch import nn
from torch.utils.data import Dataset

import dinov3_mm  # noqa: F401  (registers the safe globals)
from dinov3_mm.registry import METRICS, MODELS

TORCH_DEFAULTS_TO_WEIGHTS_ONLY = (
    digit_version(torch.__version__) >= digit_version('2.6.0'))

MODEL_TYPE = 'ResumeTestToyModel'
METRIC_TYPE = 'ResumeTestMSE'
ITERS_PER_EPOCH = 4  # 8 samples, batch size 2


@MODELS.register_module(name=MODEL_TYPE, force=True)
class ResumeTestToyModel(BaseModel):
    """A linear regressor with the mmengine model interface."""

    def __init__(self, in_dim: int = 4, out_dim: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - data_samples)**2).mean())
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(out, data_samples)]
        return out


@METRICS.register_module(name=METRIC_TYPE, force=True)
class ResumeTestMSE(BaseMetric):
    """Returns numpy scalars, as many real metrics do."""

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            err = ((sample['pred'] - sample['target'])**2).mean().item()
            self.results.append(err)

    def compute_metrics(self, results):
        return dict(
            mse=np.float32(np.mean(results)),
            mse64=np.mean(results),
            count=np.int64(len(results)))


class ToyDataset(Dataset):
    """Eight fixed regression samples with a nested-dict ``metainfo``."""

    # A dict nested in a config's ``metainfo=dict(...)`` is a ConfigDict.
    metainfo = dict(classes=('x', 'y'), source=ConfigDict(kind='in-memory'))

    def __len__(self) -> int:
        return 2 * ITERS_PER_EPOCH

    def __getitem__(self, idx: int) -> dict:
        gen = torch.Generator().manual_seed(idx)
        return dict(
            inputs=torch.randn(4, generator=gen),
            data_samples=torch.randn(2, generator=gen))


class CaptureHook(Hook):
    """Records the runner's state when the training loop starts and ends."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.start = None
        self.end = None

    def _snapshot(self, runner) -> dict:
        loss_buffer = runner.message_hub.log_scalars.get('train/loss')
        return dict(
            epoch=runner.epoch,
            iter=runner.iter,
            model=copy.deepcopy(runner.model.state_dict()),
            optimizer=copy.deepcopy(
                runner.optim_wrapper.optimizer.state_dict()),
            lr=runner.optim_wrapper.get_lr()['lr'],
            schedulers=[
                copy.deepcopy(s.state_dict()) for s in runner.param_schedulers
            ],
            n_logged_losses=len(loss_buffer.data[0]) if loss_buffer else 0)

    def before_train(self, runner) -> None:
        self.start = self._snapshot(runner)

    def after_train(self, runner) -> None:
        self.end = self._snapshot(runner)


def _dataloader() -> dict:
    return dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
        batch_size=2,
        num_workers=0,
        collate_fn=dict(type='default_collate'))


def _runner(work_dir: Path, max_epochs: int, hook: Hook = None,
            **kwargs) -> Runner:
    return Runner(
        model=dict(type=MODEL_TYPE),
        work_dir=str(work_dir),
        experiment_name=f'resume_test_{uuid.uuid4().hex}',
        train_dataloader=_dataloader(),
        val_dataloader=_dataloader(),
        val_evaluator=dict(type=METRIC_TYPE),
        val_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        optim_wrapper=dict(
            optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.01)),
        param_scheduler=[
            dict(
                type='LinearLR',
                start_factor=0.1,
                by_epoch=True,
                begin=0,
                end=1),
            # An explicit `end`: by default it becomes max_epochs, which
            # differs between the 2-epoch run and its 3-epoch resumption.
            dict(
                type='MultiStepLR',
                milestones=[1],
                by_epoch=True,
                begin=1,
                end=3),
        ],
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=1,
                save_best='mse',
                rule='less'),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[hook] if hook is not None else None,
        randomness=dict(seed=0),
        default_scope='dinov3_mm',
        **kwargs)


def _assert_tensors_equal(actual, expected, path='') -> None:
    """Recursively compare nested dicts/lists of tensors and numbers."""
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0,
                                   msg=f'mismatch at {path}')
    elif isinstance(expected, dict):
        assert set(actual) == set(expected), path
        for key in expected:
            _assert_tensors_equal(actual[key], expected[key], f'{path}.{key}')
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_tensors_equal(a, e, f'{path}[{i}]')
    else:
        assert actual == expected, f'{path}: {actual!r} != {expected!r}'


@pytest.fixture
def trained_two_epochs(tmp_path):
    """Train 2 epochs; return the work dir."""
    work_dir = tmp_path / 'run'
    _runner(work_dir, max_epochs=2).train()
    return work_dir


def test_mmengine_checkpoint_loads_weights_only(trained_two_epochs):
    ckpt = torch.load(
        trained_two_epochs / 'epoch_2.pth', map_location='cpu',
        weights_only=True)
    assert ckpt['meta']['epoch'] == 2
    assert ckpt['meta']['iter'] == 2 * ITERS_PER_EPOCH
    assert isinstance(ckpt['meta']['dataset_meta']['source'], ConfigDict)
    losses = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(losses, HistoryBuffer)
    assert len(losses.data[0]) == 2 * ITERS_PER_EPOCH
    assert np.isfinite(losses.mean())
    info = ckpt['message_hub']['runtime_info']
    assert isinstance(info['best_score'], np.float32)
    assert 'state_dict' in ckpt and 'optimizer' in ckpt
    assert len(ckpt['param_schedulers']) == 2
    best = list(trained_two_epochs.glob('best_mse_epoch_*.pth'))
    assert len(best) == 1
    torch.load(best[0], weights_only=True)


def test_resume_continues_training(trained_two_epochs, tmp_path, monkeypatch):
    saved = torch.load(
        trained_two_epochs / 'epoch_2.pth', map_location='cpu',
        weights_only=True)

    # Every torch.load during resume must keep weights_only on; force it
    # explicitly so the test does not depend on torch's default.
    load_calls = []
    original_load = torch.load

    def spy_load(*args, **kwargs):
        load_calls.append(kwargs.get('weights_only'))
        assert kwargs.get('weights_only') is not False, (
            'a torch.load call during resume turned weights_only off')
        kwargs['weights_only'] = True
        return original_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)

    hook = CaptureHook()
    runner = _runner(
        trained_two_epochs,
        max_epochs=3,
        hook=hook,
        resume=True,
        load_from=str(trained_two_epochs / 'epoch_2.pth'))
    runner.train()
    monkeypatch.undo()

    assert load_calls, 'resume did not go through torch.load'

    start = hook.start
    assert start['epoch'] == 2
    assert start['iter'] == 2 * ITERS_PER_EPOCH
    _assert_tensors_equal(start['model'], saved['state_dict'], 'state_dict')
    _assert_tensors_equal(start['optimizer']['state'],
                          saved['optimizer']['state'], 'optimizer.state')
    assert start['optimizer']['state'], 'optimizer state was not restored'
    step = start['optimizer']['state'][0]['step']
    assert int(step) == 2 * ITERS_PER_EPOCH
    assert [s['last_step'] for s in start['schedulers']] == [
        s['last_step'] for s in saved['param_schedulers']
    ]
    # The message hub (loss history) came back too.
    assert start['n_logged_losses'] == 2 * ITERS_PER_EPOCH

    assert hook.end['epoch'] == 3
    assert hook.end['iter'] == 3 * ITERS_PER_EPOCH
    assert hook.end['n_logged_losses'] == 3 * ITERS_PER_EPOCH
    final = trained_two_epochs / 'epoch_3.pth'
    assert final.is_file()
    ckpt = original_load(final, map_location='cpu', weights_only=True)
    assert ckpt['meta']['epoch'] == 3
    assert ckpt['meta']['iter'] == 3 * ITERS_PER_EPOCH
    assert (trained_two_epochs / 'last_checkpoint').read_text().strip(
    ).endswith('epoch_3.pth')

    # Resumed training equals uninterrupted training.
    straight_hook = CaptureHook()
    _runner(tmp_path / 'straight', max_epochs=3, hook=straight_hook).train()
    _assert_tensors_equal(hook.end['model'], straight_hook.end['model'],
                          'final weights')
    assert hook.end['lr'] == pytest.approx(straight_hook.end['lr'])


def test_auto_resume_from_work_dir(trained_two_epochs):
    hook = CaptureHook()
    _runner(trained_two_epochs, max_epochs=3, hook=hook, resume=True).train()
    assert hook.start['epoch'] == 2
    assert hook.end['epoch'] == 3
    assert (trained_two_epochs / 'epoch_3.pth').is_file()


@pytest.mark.skipif(
    not TORCH_DEFAULTS_TO_WEIGHTS_ONLY,
    reason='torch < 2.6 does not load with weights_only=True by default')
def test_without_safe_globals_loading_fails(trained_two_epochs, run_python):
    """In a fresh interpreter without dinov3_mm, the same load fails."""
    code = textwrap.dedent(f"""
        import sys
        import torch
        from mmengine.runner.checkpoint import _load_checkpoint
        assert 'dinov3_mm' not in sys.modules
        ckpt = {str(trained_two_epochs / 'epoch_2.pth')!r}
        for name, load in [
                ('torch', lambda: torch.load(ckpt, weights_only=True)),
                ('mmengine', lambda: _load_checkpoint(ckpt, 'cpu'))]:
            try:
                load()
            except Exception as exc:
                print(name, 'FAILED', type(exc).__name__,
                      str(exc).replace(chr(10), ' '))
            else:
                print(name, 'LOADED')
        import dinov3_mm
        torch.load(ckpt, weights_only=True)
        _load_checkpoint(ckpt, 'cpu')
        print('with dinov3_mm LOADED')
        """)
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    torch_line = next(line for line in lines if line.startswith('torch '))
    mm_line = next(line for line in lines if line.startswith('mmengine '))
    assert 'FAILED UnpicklingError' in torch_line, torch_line
    assert 'FAILED UnpicklingError' in mm_line, mm_line
    assert 'with dinov3_mm LOADED' in lines
