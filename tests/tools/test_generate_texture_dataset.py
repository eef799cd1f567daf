"""tools/generate_shapes_dataset.py --seg --texture writes the texture set."""
import importlib.util
import json

import numpy as np
import pytest
from PIL import Image


def _tool(repo_root):
    path = repo_root / 'tools' / 'generate_shapes_dataset.py'
    spec = importlib.util.spec_from_file_location('generate_shapes', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_texture_dataset_written_and_recorded(repo_root, tmp_path, capsys):
    tool = _tool(repo_root)
    root = tmp_path / 'tex'
    args = [str(root), '--seg', '--texture', '--train', '4', '--val', '2',
            '--size', '32']
    assert tool.main(args) == 0
    masks = sorted((root / 'ann_dir' / 'train').glob('*.png'))
    assert len(masks) == 4
    assert len(list((root / 'img_dir' / 'val').glob('*.png'))) == 2
    assert set(np.unique(np.asarray(Image.open(masks[0])))) <= {0, 1, 2, 3}
    settings = json.loads((root / 'shapes_dataset.json').read_text())
    assert settings['style'] == 'texture'
    capsys.readouterr()
    assert tool.main(args) == 0
    assert 'same settings (textures' in capsys.readouterr().out
    # the coloured shapes are another dataset: refused without --force
    assert tool.main(args[:2] + args[3:]) == 1


def test_plain_seg_settings_unchanged_and_texture_needs_seg(repo_root):
    tool = _tool(repo_root)
    assert 'style' not in tool.requested_settings(tool.parse_args(['--seg']))
    assert tool.default_root(tool.parse_args(['--seg', '--texture'])) == \
        'data/seg_textures'
    with pytest.raises(SystemExit):
        tool.parse_args(['--texture'])
