"""Fixtures shared by the whole test suite.

Tests run in parallel (``pytest -n 2``): they write only under ``tmp_path``
and start subprocesses, not global state, when they need a fresh interpreter.
"""
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The repository checkout the tests belong to."""
    return REPO_ROOT


def _subprocess_env(extra_paths: Iterable[os.PathLike] = (),
                    **overrides: Optional[str]) -> Dict[str, str]:
    env = dict(os.environ)
    paths = [str(p) for p in extra_paths] + [str(REPO_ROOT)]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.setdefault('MPLBACKEND', 'Agg')
    env.pop('DINOV3_MM_NO_PLUGINS', None)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture
def run_python(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python -c code`` (or a script with ``args``) in a fresh process.

    The child imports this checkout's ``dinov3_mm`` (``PYTHONPATH``), runs in
    ``tmp_path`` and has ``DINOV3_MM_NO_PLUGINS`` unset unless ``env`` sets
    it. Returns the completed process; stdout and stderr are text.
    """

    def run(code: Optional[str] = None,
            args: Iterable[str] = (),
            extra_paths: Iterable[os.PathLike] = (),
            env: Optional[Dict[str, Optional[str]]] = None,
            timeout: float = 300,
            cwd: Optional[os.PathLike] = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable]
        if code is not None:
            cmd += ['-c', code]
        cmd += [str(a) for a in args]
        return subprocess.run(
            cmd,
            cwd=str(cwd or tmp_path),
            env=_subprocess_env(extra_paths, **(env or {})),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout)

    return run


def _shrink_config(cfg, data_root, batch_size: int = 4,
                   img_size: Optional[int] = None):
    """Point a shapes config at ``data_root`` with small, worker-free loaders."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        loader.dataset.data_root = str(data_root)
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.batch_size = batch_size
        for step in loader.dataset.pipeline:
            if img_size and step['type'] == 'ResizeKeepRatioPad':
                step['size'] = img_size
    cfg.param_scheduler = []
    return cfg


@pytest.fixture
def shrink_config():
    """``shrink_config(cfg, data_root, batch_size=4, img_size=None)``."""
    return _shrink_config


def _tiny_seg_config(data_root, work_dir, batch_size: int = 4,
                     img_size: int = 32, max_epochs: int = 1):
    """configs/segmentation/vit_unet_seg_shapes.py with a 2-block 48-d ViT,
    validation and a checkpoint every epoch, no best-checkpoint tracking."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        str(REPO_ROOT / 'configs/segmentation/vit_unet_seg_shapes.py'))
    cfg = _shrink_config(cfg, data_root, batch_size, img_size)
    cfg.model.backbone.arch = dict(embed_dims=48, num_layers=2, num_heads=3)
    cfg.model.neck.in_channels = 48
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.save_best = None
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='session')
def tiny_seg_config():
    """``tiny_seg_config(data_root, work_dir, batch_size=4, img_size=32,
    max_epochs=1)``: a seconds-long segmentation config."""
    return _tiny_seg_config


# A tiny LoRA classifier whose backbone names an unreachable pretrained file:
# loading a trained checkpoint must not try to read it.
TINY_LORA_CLASSIFIER = dict(
    type='DINOv3Classifier',
    backbone=dict(type='DINOv3ViT',
                  arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                  out_type='cls_patch_avg',
                  init_cfg=dict(type='Pretrained',
                                checkpoint='/nonexistent/weights.pth')),
    head=dict(type='LinearClsHead', num_classes=3, in_channels=128),
    lora=dict(r=4, alpha=8))


def _build_tiny_classifier(lora: bool = True):
    import copy

    from mmengine.registry import init_default_scope

    from dinov3_mm.registry import MODELS
    init_default_scope('dinov3_mm')
    cfg = copy.deepcopy(TINY_LORA_CLASSIFIER)
    cfg['backbone'].pop('init_cfg')
    if not lora:
        cfg.pop('lora')
    return MODELS.build(cfg).eval()


@pytest.fixture
def lora_checkpoint(tmp_path):
    """:data:`TINY_LORA_CLASSIFIER` with non-zero adapters, saved.

    Returns:
        dict: ``model_cfg`` (a copy of :data:`TINY_LORA_CLASSIFIER`),
        ``model`` (the saved LoRA model), ``checkpoint`` (``epoch_1.pth``,
        ``meta.epoch == 1``) and ``build`` (``build(lora=True)``: a fresh
        model of the config, with or without LoRA).
    """
    import copy

    import torch
    torch.manual_seed(0)
    model = _build_tiny_classifier()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'lora_B' in name:
                param.normal_(std=0.1)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), ckpt)
    return dict(model_cfg=copy.deepcopy(TINY_LORA_CLASSIFIER), model=model,
                checkpoint=ckpt, build=_build_tiny_classifier)


@pytest.fixture(autouse=True)
def _default_scope_is_not_leaked():
    """A test must leave mmengine's current default scope ours (or unset).

    A ``Runner`` built without ``default_scope`` makes ``'mmengine'`` the
    current scope for the rest of the worker process, and later tests then
    fail to build our modules depending on how ``pytest -n`` distributed
    them; this check names the leaking test instead.
    """
    yield
    from mmengine.registry import DefaultScope, init_default_scope
    current = DefaultScope.get_current_instance()
    name = current.scope_name if current is not None else None
    if name not in (None, 'dinov3_mm'):
        init_default_scope('dinov3_mm')  # so that only this test fails
        pytest.fail(f'the test left the default scope {name!r}: give its '
                    "Runner default_scope='dinov3_mm' or restore the scope",
                    pytrace=False)
