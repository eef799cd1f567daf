"""No shipped config names a checkpoint file that does not exist.

Recipes leave the pretrained slot empty
(``init_cfg=dict(type='Pretrained', checkpoint=None)``) and the README's
commands fill it with ``--cfg-options``; a path written into a config must
exist in the repository (paths are relative to its root, where the tools
run).
"""
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from mmengine.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    str(p.relative_to(REPO_ROOT))
    for p in (REPO_ROOT / 'configs').rglob('*.py'))
#: Keys whose string value names a weights file or folder.
CHECKPOINT_KEYS = ('checkpoint', 'load_from', 'pretrained', 'resume_from')
#: Endings of a weights file wherever it appears in a config.
CHECKPOINT_SUFFIXES = ('.pth', '.pt', '.ckpt', '.safetensors', '.bin')


def _strings(node, key: str = '') -> Iterator[Tuple[str, str]]:
    """``(dotted key, value)`` of every string in a config tree."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _strings(value, f'{key}.{name}' if key else str(name))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _strings(value, f'{key}.{index}')
    elif isinstance(node, str):
        yield key, node


def missing_checkpoints(cfg: Config, root: Path) -> List[str]:
    """``key=path`` of each checkpoint path in ``cfg`` absent under ``root``.

    A value counts as a checkpoint path when its key is one of
    :data:`CHECKPOINT_KEYS` or it ends with a weights-file suffix; URLs
    (``scheme://``) are not local files and are left out.
    """
    missing = []
    for key, value in _strings(cfg.to_dict()):
        named = key.split('.')[-1] in CHECKPOINT_KEYS
        if not (named or value.lower().endswith(CHECKPOINT_SUFFIXES)):
            continue
        if '://' in value:
            continue
        path = Path(value).expanduser()
        if not (path if path.is_absolute() else root / path).exists():
            missing.append(f'{key}={value}')
    return missing


@pytest.mark.parametrize('path', CONFIGS)
def test_config_names_no_missing_checkpoint(path):
    cfg = Config.fromfile(str(REPO_ROOT / path))
    assert missing_checkpoints(cfg, REPO_ROOT) == [], (
        f'{path} names checkpoint files that do not exist; leave the slot '
        "empty (init_cfg=dict(type='Pretrained', checkpoint=None)) and pass "
        'the path with --cfg-options.')


def test_a_missing_checkpoint_is_reported(tmp_path):
    (tmp_path / 'present.pth').write_bytes(b'')
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        "model = dict(backbone=dict(init_cfg=dict(type='Pretrained', "
        "checkpoint='checkpoints/absent.pth')),\n"
        "             neck=dict(init_cfg=dict(type='Pretrained', "
        "checkpoint='present.pth')),\n"
        "             head=dict(init_cfg=dict(type='Pretrained', "
        "checkpoint=None)))\n"
        "load_from = 'hf_weights'\n"
        "weights = ['https://example.com/w.pth', 'old/model.safetensors']\n"
        "default_hooks = dict(checkpoint=dict(type='CheckpointHook'))\n")
    cfg = Config.fromfile(str(cfg_file))
    assert missing_checkpoints(cfg, tmp_path) == [
        'model.backbone.init_cfg.checkpoint=checkpoints/absent.pth',
        'load_from=hf_weights', 'weights.1=old/model.safetensors'
    ]
