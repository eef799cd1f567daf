"""SSL continuation on two torchrun processes (gloo on the CPU), with
gradient checkpointing and bf16 autocast (--amp) as the README offers, with
DDP and sharded (--fsdp)."""
import os
import socket
import subprocess
import sys

import pytest
import torch

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.utils.checkpoint_io import load_weights_only


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize('sharding', [[], ['--fsdp']], ids=['ddp', 'fsdp'])
def test_dist_train_ssl_two_cpu_processes(tmp_path, repo_root, sharding):
    data = write_shape_dataset(str(tmp_path / 'shapes'), size=32,
                               per_split=dict(train=6, val=2, test=1))
    config = tmp_path / 'ssl_tiny.py'
    config.write_text(f"""
_base_ = [{str(repo_root / 'configs/ssl/vits16_continue_shapes.py')!r}]
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=48, num_layers=2,
                            num_heads=3),
                  init_cfg=None, with_cp=True),
    dino_head=dict(out_dim=64, hidden_dim=64, bottleneck_dim=32))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={data + '/train'!r}, pipeline=[
        dict(type='LoadImage'),
        dict(type='DINOMultiCrop', global_crops_size=32, local_crops_size=16,
             local_crops_number=2),
        dict(type='PackMultiCropInputs')]))
train_cfg = dict(max_epochs=2)
param_scheduler = []
custom_hooks = [dict(type='DINOTeacherHook')]
""")
    env = dict(os.environ, PYTHONPATH=str(repo_root), PORT=str(_free_port()),
               MASTER_ADDR='127.0.0.1', PYTHON=sys.executable,
               OMP_NUM_THREADS='1')
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        ['bash', str(repo_root / 'tools' / 'dist_train.sh'), str(config), '2',
         '--work-dir', str(work_dir), '--amp', *sharding],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    # the environment goes to the run's log file, not the console
    run_log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Distributed training: True' in run_log
    assert 'Processes: 2' in run_log and 'GPU number' not in run_log
    dumped = (work_dir / 'ssl_tiny.py').read_text()
    assert "type='AmpOptimWrapper'" in dumped and 'with_cp=True' in dumped
    if sharding:  # student, teacher and Gram teacher: 1/2 on each rank
        assert "type='FSDPWrapper'" in dumped
        shard = load_weights_only(str(work_dir / 'epoch_2.pth.shard1-of-2'))
        for part in ('student.backbone', 'teacher.backbone', 'gram_teacher'):
            assert shard['state_dict'][
                f'{part}.blocks.1.attn.qkv.weight'].shape == (72, 48)
    ckpt = load_weights_only(str(work_dir / 'epoch_2.pth'))
    # 18 images, 9 per process, 4 per step, short batch dropped: 2 steps
    assert ckpt['meta']['iter'] == 4
    state = ckpt['state_dict']
    student = state['student.backbone.blocks.1.attn.qkv.weight']
    teacher = state['teacher.backbone.blocks.1.attn.qkv.weight']
    assert torch.isfinite(student).all() and torch.isfinite(teacher).all()
    assert not torch.equal(student, teacher)  # EMA lags the student
