"""SIGKILL mid-epoch, then --resume: same number of steps, no corrupt file."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import torch

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)

MODULE = textwrap.dedent("""
    import time
    import torch
    from mmengine.model import BaseModel
    from torch import nn
    from torch.utils.data import Dataset
    from dinov3_mm.registry import DATASETS, MODELS

    @MODELS.register_module()
    class SlowProbeModel(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            time.sleep(0.15)
            out = self.linear(inputs)
            return dict(loss=((out - data_samples) ** 2).mean())

    @DATASETS.register_module()
    class SlowProbeDataset(Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, idx):
            gen = torch.Generator().manual_seed(idx)
            return dict(inputs=torch.randn(4, generator=gen),
                        data_samples=torch.randn(2, generator=gen))
""")

CONFIG = """
custom_imports = dict(imports=['slow_probe'], allow_failed_imports=False)
model = dict(type='SlowProbeModel')
train_dataloader = dict(
    dataset=dict(type='SlowProbeDataset'),
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
    batch_size=2, num_workers=0, collate_fn=dict(type='default_collate'))
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
    logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0)
"""


def test_sigkill_mid_epoch_then_resume(tmp_path, repo_root):
    (tmp_path / 'slow_probe.py').write_text(MODULE)
    (tmp_path / 'cfg.py').write_text(CONFIG)
    work_dir = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(repo_root)]))
    cmd = [sys.executable, str(repo_root / 'tools' / 'train.py'),
           str(tmp_path / 'cfg.py'), '--work-dir', str(work_dir)]

    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not (work_dir / 'iter_3.pth').exists():
            assert proc.poll() is None, 'training ended before the kill'
            assert time.monotonic() < deadline, 'no checkpoint within 120 s'
            time.sleep(0.05)
        time.sleep(0.3)  # well inside epoch 1 (8 iterations of 0.15 s)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (work_dir / 'epoch_1.pth').exists()
    for ckpt in work_dir.glob('*.pth'):
        torch.load(ckpt, weights_only=True)  # complete, not truncated
    assert not list(work_dir.glob('*.tmp'))

    done = subprocess.run(cmd + ['--resume'], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'resumed epoch: 0' in done.stdout + done.stderr
    log = done.stdout + done.stderr
    assert 'Epoch(train) [2][8/8]' in log
    final = torch.load(work_dir / 'iter_16.pth', weights_only=True)
    assert final['meta']['iter'] == 16  # 2 epochs x 8 iterations, no more
    assert not (work_dir / 'iter_18.pth').exists()
