"""tools/dist_train.sh and dist_test.sh: two torchrun processes on the CPU (gloo)."""
import os
import socket
import subprocess
import sys

import torch

import dinov3_mm  # noqa: F401  (allow-lists mmengine checkpoint classes)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_and_test_two_cpu_processes(tiny_config, tmp_path, repo_root):
    work_dir = tmp_path / 'work'
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(repo_root)]),
        PORT=str(_free_port()),
        MASTER_ADDR='127.0.0.1',
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1')

    def run(script, *args):
        proc = subprocess.run(
            ['bash', str(repo_root / 'tools' / script), *map(str, args)],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=300)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-5000:]
        return log

    log = run('dist_train.sh', tiny_config, 2, '--work-dir', work_dir)
    # the environment goes to the run's log file, not the console
    run_log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Distributed training: True' in run_log
    assert 'Processes: 2' in run_log and 'GPU number' not in run_log
    ckpt = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    # 8 samples, batch 4 per process, 2 processes: one iteration per epoch
    assert ckpt['meta']['iter'] == 1

    env['PORT'] = str(_free_port())
    log = run('dist_test.sh', tiny_config, work_dir / 'epoch_1.pth', 2,
              '--work-dir', tmp_path / 'test_work')
    assert 'mse:' in log
    test_log = next((tmp_path / 'test_work').glob('*/*.log')).read_text()
    assert 'Distributed training: True' in test_log
