"""Fixtures of the industrial plugin tests.

The tests expect the plugin to be installed (``pip install --no-deps
--no-build-isolation -e projects/industrial``): the training-tool test
relies on the ``dinov3_mm.plugins`` entry point, exactly as a user would.
"""
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[3]
PROJECT_ROOT = REPO_ROOT / 'projects' / 'industrial'
INSTALL_HINT = ('pip install --no-deps --no-build-isolation -e '
                'projects/industrial')

if not any(ep.value.split(':')[0] == 'dinov3_mm_industrial'
           for ep in entry_points(group='dinov3_mm.plugins')):
    raise pytest.UsageError(
        'The dinov3_mm_industrial plugin is not installed in this '
        f'environment; run `{INSTALL_HINT}` first.')

# Tiny random-init ViT with 8-pixel patches: a 64-pixel image gives an 8x8
# grid of patch features, enough to localise defects.
TINY_ARCH = dict(embed_dims=64, num_layers=2, num_heads=2, patch_size=8)


@pytest.fixture(scope='session', autouse=True)
def single_thread():
    """Tiny tensors: one thread avoids oversubscribing a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The repository checkout."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_backbone() -> dict:
    """Config of a tiny DINOv3ViT returning its last patch map."""
    return dict(type='DINOv3ViT', arch=dict(TINY_ARCH), out_type='featmap',
                out_indices=(-1, ))


@pytest.fixture
def run_cmd(tmp_path):
    """Run ``python args...`` in ``tmp_path``; fail with the output."""

    def run(args: Sequence, env: Optional[Dict[str, str]] = None,
            timeout: float = 240, check: bool = True
            ) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env['PYTHONPATH'] = os.pathsep.join(
            [str(REPO_ROOT)] + ([full_env['PYTHONPATH']]
                                if full_env.get('PYTHONPATH') else []))
        full_env.setdefault('MPLBACKEND', 'Agg')
        full_env.setdefault('OMP_NUM_THREADS', '1')
        full_env.pop('DINOV3_MM_NO_PLUGINS', None)
        full_env.update(env or {})
        proc = subprocess.run([sys.executable] + [str(a) for a in args],
                              cwd=str(tmp_path), env=full_env,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, proc.stdout[-3000:] + \
                proc.stderr[-6000:]
        return proc

    return run
