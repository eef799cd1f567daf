"""tools/generate_shapes_dataset.py writes both shapes datasets."""
import importlib.util

import numpy as np
from PIL import Image


def _tool(repo_root):
    path = repo_root / 'tools' / 'generate_shapes_dataset.py'
    spec = importlib.util.spec_from_file_location('generate_shapes', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seg_dataset_layout_and_masks(repo_root, tmp_path, capsys):
    tool = _tool(repo_root)
    root = tmp_path / 'seg'
    assert tool.main([str(root), '--seg', '--train', '5', '--val', '3',
                      '--size', '32']) == 0
    for split, count in (('train', 5), ('val', 3)):
        images = sorted((root / 'img_dir' / split).glob('*.png'))
        masks = sorted((root / 'ann_dir' / split).glob('*.png'))
        assert len(images) == len(masks) == count
        mask = np.asarray(Image.open(masks[0]))
        assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 1, 2, 3}
        assert Image.open(images[0]).size == (32, 32)
    capsys.readouterr()
    assert tool.main([str(root), '--seg', '--train', '5', '--val', '3',
                      '--size', '32']) == 0  # same settings: kept
    assert 'same settings' in capsys.readouterr().out
    assert len(list((root / 'img_dir' / 'train').glob('*.png'))) == 5


def test_classification_dataset(repo_root, tmp_path):
    tool = _tool(repo_root)
    root = tmp_path / 'cls'
    assert tool.main([str(root), '--train', '2', '--val', '1', '--test', '1',
                      '--size', '32']) == 0
    classes = sorted(p.name for p in (root / 'train').iterdir())
    assert len(classes) == 3
    assert len(list((root / 'train' / classes[0]).glob('*.png'))) == 2


def test_other_settings_refused_then_replaced(repo_root, tmp_path, capsys):
    tool = _tool(repo_root)
    root = tmp_path / 'cls'
    small = ['--train', '2', '--val', '1', '--test', '1', '--size', '32']
    assert tool.main([str(root), *small]) == 0
    capsys.readouterr()
    assert tool.main([str(root), '--train', '1', '--val', '1', '--test', '1',
                      '--size', '32']) == 1
    err = capsys.readouterr().err
    assert 'other settings (2/1/1 images per class, 32 px' in err
    assert '--force' in err
    assert tool.main([str(root), '--train', '1', '--val', '1', '--test', '1',
                      '--size', '32', '--force']) == 0
    first_class = sorted((root / 'train').iterdir())[0]
    assert len(list(first_class.glob('*.png'))) == 1  # no old image left


def test_unrecorded_dataset_kept(repo_root, tmp_path, capsys):
    tool = _tool(repo_root)
    (tmp_path / 'old' / 'train' / 'a').mkdir(parents=True)
    assert tool.main([str(tmp_path / 'old')]) == 0
    assert '(settings not recorded); keeping it' in capsys.readouterr().out
