"""StrictRunner: strict, weights-only checkpoint loading and careful resuming."""
import os
import pathlib
import stat
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

import dinov3_mm  # noqa: F401  (weights-only loaders, safe globals)
from dinov3_mm.engine.runner import StrictRunner
from dinov3_mm.registry import DATASETS, MODELS
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.state_dict_loading import CheckpointMismatchError

MODEL_TYPE = 'StrictRunnerToyModel'


@MODELS.register_module(name=MODEL_TYPE, force=True)
class StrictRunnerToyModel(BaseModel):

    def __init__(self, out_dim: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(4, out_dim)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out[:, :2] - data_samples)**2).mean())
        return out


@DATASETS.register_module(name='StrictRunnerToyData', force=True)
class ToyData(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(4, generator=gen),
                    data_samples=torch.randn(2, generator=gen))


def make_runner(work_dir, max_epochs=2, **overrides) -> StrictRunner:
    cfg = Config(dict(
        model=dict(type=MODEL_TYPE),
        work_dir=str(work_dir),
        experiment_name=f'strict_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=dict(type='StrictRunnerToyData'),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
            batch_size=4, num_workers=0,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook',
                                           interval=1)),
        randomness=dict(seed=0),
        default_scope='dinov3_mm'))
    cfg.merge_from_dict(overrides)
    return StrictRunner.from_cfg(cfg)


@pytest.fixture
def trained(tmp_path):
    work_dir = tmp_path / 'work'
    make_runner(work_dir).train()
    return work_dir


def test_checkpoints_and_record_are_written_atomically(trained):
    record = trained / 'last_checkpoint'
    assert record.read_text() == str(trained / 'epoch_2.pth')
    umask = os.umask(0)
    os.umask(umask)
    for name in ('epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'):
        mode = stat.S_IMODE(os.stat(trained / name).st_mode)
        assert mode == 0o666 & ~umask, (name, oct(mode))
    assert not list(trained.glob('*.tmp'))


def test_load_from_another_model_is_refused(trained, tmp_path):
    runner = make_runner(tmp_path / 'test', model=dict(out_dim=3),
                         load_from=str(trained / 'epoch_2.pth'))
    with pytest.raises(CheckpointMismatchError) as info:
        runner.load_or_resume()
    message = str(info.value)
    assert f'{trained / "epoch_2.pth"} does not match' in message
    assert 'linear.weight: checkpoint (2, 4) vs model (3, 4)' in message
    assert 'not even a partial load is possible' in message


def test_partial_load_needs_load_strict_false(trained, tmp_path, capsys):
    state = torch.load(trained / 'epoch_2.pth', weights_only=True)
    state['state_dict']['extra.weight'] = torch.zeros(3)
    torch.save(state, tmp_path / 'extra.pth')
    strict = make_runner(tmp_path / 'a', load_from=str(tmp_path / 'extra.pth'))
    with pytest.raises(CheckpointMismatchError,
                       match='1 unexpected .*: extra.weight'):
        strict.load_or_resume()
    loose = make_runner(tmp_path / 'b', load_from=str(tmp_path / 'extra.pth'),
                        load_strict=False)
    loose.load_or_resume()
    assert torch.equal(loose.model.linear.weight,
                       state['state_dict']['linear.weight'])
    out = capsys.readouterr()
    assert 'Partial load (strict=False)' in out.out + out.err


@pytest.mark.parametrize('env', [None, '1'])
def test_payload_checkpoint_never_runs(trained, tmp_path, monkeypatch, env):
    if env:
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', env)
    marker = tmp_path / 'code_ran'

    class Payload:
        def __reduce__(self):
            return pathlib.Path.touch, (marker, )

    state = torch.load(trained / 'epoch_2.pth', weights_only=True)
    state['meta']['note'] = Payload()
    torch.save(state, tmp_path / 'evil.pth')
    for resume in (False, True):
        runner = make_runner(tmp_path / f'run{resume}',
                             load_from=str(tmp_path / 'evil.pth'),
                             resume=resume)
        with pytest.raises(CheckpointError,
                           match='weights-only loading does not allow'):
            runner.load_or_resume()
    assert not marker.exists()


def _resume(work_dir, capsys):
    runner = make_runner(work_dir, max_epochs=3, resume=True)
    runner.load_or_resume()
    out = capsys.readouterr()
    return runner, out.out + out.err


@pytest.mark.parametrize('record,problem', [
    ('', 'is empty'),
    (None, 'does not exist'),
    ('/nowhere/epoch_2.pth', 'names /nowhere/epoch_2.pth, which does not '
     'exist'),
])
def test_resume_with_a_bad_record_uses_the_newest_checkpoint(
        trained, capsys, record, problem):
    if record is None:
        (trained / 'last_checkpoint').unlink()
    else:
        (trained / 'last_checkpoint').write_text(record)
    runner, log = _resume(trained, capsys)
    assert runner.epoch == 2
    assert problem in log
    assert f'resuming from the newest checkpoint in {trained} that loads: ' \
        f'{trained / "epoch_2.pth"}' in log


def test_resume_skips_a_truncated_checkpoint(trained, capsys):
    data = (trained / 'epoch_2.pth').read_bytes()
    (trained / 'epoch_2.pth').write_bytes(data[:len(data) // 3])
    runner, log = _resume(trained, capsys)
    assert runner.epoch == 1
    assert 'which does not load' in log
    assert 'skipped, unreadable: epoch_2.pth' in log


def test_resume_with_nothing_to_resume_says_so(tmp_path, capsys):
    runner, log = _resume(tmp_path / 'empty', capsys)
    assert runner.epoch == 0
    assert 'training starts from the beginning' in log


def test_temp_files_of_a_killed_save_are_removed(trained, capsys):
    stale = trained / 'epoch_3.pth.k1ll3d00.tmp'
    stale.write_bytes(b'partial')
    _resume(trained, capsys)
    assert not stale.exists()
