"""tools/dist_train.sh: two torchrun processes on the CPU with gloo."""
import os
import socket
import subprocess
import sys

import torch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_two_cpu_processes(tiny_config, tmp_path, repo_root):
    work_dir = tmp_path / 'work'
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(repo_root)]),
        PORT=str(_free_port()),
        MASTER_ADDR='127.0.0.1',
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', str(repo_root / 'tools' / 'dist_train.sh'), str(tiny_config),
         '2', '--work-dir', str(work_dir)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert 'Distributed training: True' in log
    ckpt = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    # 8 samples, batch 4 per process, 2 processes: one iteration per epoch
    assert ckpt['meta']['iter'] == 1
