"""tools/train.py --auto-scale-lr scales the learning rate the run uses."""
import glob
import json

import pytest
from mmengine.config import Config

from dinov3_mm.engine.tool_options import enable_auto_scale_lr
from dinov3_mm.utils.cli import UserError


def _logged_lrs(work_dir):
    (log, ) = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    with open(log) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return [r['lr'] for r in records if 'lr' in r]


@pytest.mark.parametrize('extra, expected_lr', [
    ([], 0.1),  # batch size 4 = the config's: unchanged
    (['--cfg-options', 'train_dataloader.batch_size=8'], 0.2),
    (['--cfg-options', 'auto_scale_lr.base_batch_size=16'], 0.025),
])
def test_auto_scale_lr(run_tool, tiny_config, tmp_path, extra, expected_lr):
    work_dir = tmp_path / 'work'
    proc = run_tool('train.py', tiny_config, '--auto-scale-lr',
                    '--work-dir', work_dir, *extra)
    lrs = _logged_lrs(work_dir)
    assert lrs and all(lr == pytest.approx(expected_lr) for lr in lrs), lrs
    log = ''.join(open(p).read() for p in glob.glob(
        str(work_dir / '*' / '*.log')))
    assert 'Scaling the original LR by' in log + proc.stdout + proc.stderr


def test_without_the_flag_the_lr_is_kept(run_tool, tiny_config, tmp_path):
    work_dir = tmp_path / 'work'
    run_tool('train.py', tiny_config, '--work-dir', work_dir, '--cfg-options',
             'train_dataloader.batch_size=8')
    assert all(lr == pytest.approx(0.1) for lr in _logged_lrs(work_dir))


def test_auto_scale_lr_needs_a_base_batch_size():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=1.)),
                      train_dataloader=dict(dataset=dict())))
    with pytest.raises(UserError, match='base_batch_size'):
        enable_auto_scale_lr(cfg, 'cfg.py')
    cfg = Config(dict(train_dataloader=dict(batch_size=4)))
    with pytest.raises(UserError, match='no optim_wrapper'):
        enable_auto_scale_lr(cfg, 'cfg.py')
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=1.)),
                      train_dataloader=dict(batch_size=4),
                      auto_scale_lr=dict(base_batch_size=32)))
    assert enable_auto_scale_lr(cfg, 'cfg.py') == 32
    assert cfg.auto_scale_lr == dict(base_batch_size=32, enable=True)
