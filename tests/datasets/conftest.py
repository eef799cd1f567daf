"""Helpers writing small real image files for the dataset tests."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _write_png(path: Path, value: int = 128, size=(16, 12),
               seed: int = 0) -> Path:
    """A textured RGB PNG (``size`` is ``(w, h)``), unique per ``seed``."""
    rng = np.random.default_rng(seed)
    data = np.clip(rng.normal(value, 30, (size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astype(np.uint8)).save(path)
    return path


def _make_folder(root: Path, counts: dict, split: str = None,
                 start_seed: int = 0) -> Path:
    """``root[/split]/<class>/<i>.png`` with ``counts[class]`` images."""
    base = root / split if split else root
    seed = start_seed
    for name, num in counts.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        for i in range(num):
            _write_png(base / name / f'{i:03d}.png', seed=seed)
            seed += 1
    return root


@pytest.fixture
def write_png():
    """``write_png(path, value=128, size=(w, h), seed=0)`` -> path."""
    return _write_png


@pytest.fixture
def make_folder():
    """``make_folder(root, {class: count}, split=None, start_seed=0)``."""
    return _make_folder


@pytest.fixture
def folder_b(tmp_path) -> Path:
    """Layout B: 3 classes of 10, 20 and 30 images."""
    return _make_folder(tmp_path / 'data', dict(a=10, b=20, c=30))


@pytest.fixture
def folder_a(tmp_path) -> Path:
    """Layout A: train/val/test with classes a, b."""
    root = tmp_path / 'data'
    _make_folder(root, dict(a=4, b=3), 'train', 0)
    _make_folder(root, dict(a=2, b=2), 'val', 100)
    _make_folder(root, dict(a=1, b=1), 'test', 200)
    return root
