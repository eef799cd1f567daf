"""Fixtures of the satellite plugin tests.

The package is imported from this checkout (``projects/satellite``) even when
it is not pip-installed; subprocesses get the same ``PYTHONPATH``.
"""
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, Optional

import pytest

PROJECT = Path(__file__).resolve().parents[1]
REPO_ROOT = PROJECT.parents[1]
for path in (str(REPO_ROOT), str(PROJECT)):
    if path not in sys.path:
        sys.path.insert(0, path)

import dinov3_mm  # noqa: E402,F401  (registries, safe checkpoint loading)
import dinov3_mm_satellite  # noqa: E402,F401  (registers the components)

#: Shrinks configs/satellite/vits16_unet_multispectral.py to seconds.
TINY_ARCH = dict(embed_dims=48, num_layers=2, num_heads=3)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def geo_set(tmp_path_factory) -> dict:
    """A tiny generated set: 4 train + 2 val 32-px tiles, 6 bands."""
    from dinov3_mm_satellite.synthetic import generate_geotiff_dataset
    root = tmp_path_factory.mktemp('geo_set')
    return generate_geotiff_dataset(str(root), num_train=4, num_val=2,
                                    tile_size=32, num_bands=6, seed=1)


def python_env(**overrides: Optional[str]) -> Dict[str, str]:
    """Environment of a child interpreter importing this checkout."""
    env = dict(os.environ)
    paths = [str(PROJECT), str(REPO_ROOT)]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.setdefault('MPLBACKEND', 'Agg')
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(args: Iterable[str], cwd: Path,
               timeout: float = 300, **env: Optional[str]
               ) -> subprocess.CompletedProcess:
    """Run ``python args...`` in ``cwd``; text output captured."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=str(cwd),
                          env=python_env(**env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def tiny_model_cfg(in_channels: int = 6, num_classes: int = 4) -> dict:
    """A seconds-fast multispectral segmentor config (no normalisation in
    the preprocessor, as in the satellite configs)."""
    return dict(
        type='DINOv3Segmentor',
        data_preprocessor=dict(normalization=None),
        backbone=dict(type='MultispectralDINOv3ViT', arch=dict(TINY_ARCH),
                      in_channels=in_channels, out_type='featmap',
                      out_indices=(-1, )),
        neck=dict(type='SimpleFPN', in_channels=48, out_channels=16,
                  scales=(4, 2, 1, 0.5)),
        decode_head=dict(type='UNetHead', in_channels=[16] * 4,
                         channels=(16, 16, 16), num_classes=num_classes,
                         dropout_ratio=0.0))


@pytest.fixture(scope='session')
def model_cfg():
    """``model_cfg(in_channels=6, num_classes=4)``, see
    :func:`tiny_model_cfg`."""
    return tiny_model_cfg


@pytest.fixture(scope='session')
def python():
    """``python(args, cwd, timeout=300, **env)``: see :func:`run_python`."""
    return run_python


@pytest.fixture(scope='session')
def tiny_arch() -> dict:
    return dict(TINY_ARCH)
