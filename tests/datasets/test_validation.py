"""validate_dataset: counts, imbalance, broken, odd and duplicate images."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from dinov3_mm.datasets import (ImageFolderDataset, ValidationRules,
                                validate_dataset)


def test_clean_dataset_passes(folder_a):
    report = validate_dataset(str(folder_a))
    assert report.passed and report.failed_rules == []
    assert report.counts == {'train': dict(a=4, b=3), 'val': dict(a=2, b=2),
                             'test': dict(a=1, b=1)}
    assert report.imbalance == pytest.approx(7 / 6)
    text = report.render()
    assert 'PASSED' in text and 'train' in text and 'Imbalance' in text
    json.dumps(report.to_dict())


def _broken_dataset(root, make_folder):
    make_folder(root, dict(a=3, b=3), 'train')
    make_folder(root, dict(a=1, b=1), 'val', 100)
    (root / 'train' / 'a' / 'corrupt.png').write_bytes(b'garbage')
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
        root / 'train' / 'b' / 'dark_small.png')
    Image.fromarray(np.full((40, 40, 3), 250, np.uint8)).save(
        root / 'train' / 'b' / 'bright_flat.png')
    shutil.copy(root / 'train' / 'a' / '000.png', root / 'val' / 'a' /
                'leak.png')
    shutil.copy(root / 'train' / 'a' / '001.png', root / 'train' / 'a' /
                'twin.png')
    return root


def test_broken_dataset_issues(tmp_path, make_folder):
    root = _broken_dataset(tmp_path / 'd', make_folder)
    report = validate_dataset(str(root), min_size=10)
    issues = {k: [p for p, _ in v] for k, v in report.issues.items()}
    assert issues['unreadable'] == [str(root / 'train/a/corrupt.png')]
    assert issues['too_small'] == [str(root / 'train/b/dark_small.png')]
    assert issues['too_dark'] == [str(root / 'train/b/dark_small.png')]
    assert str(root / 'train/b/bright_flat.png') in issues['too_bright']
    assert str(root / 'train/b/bright_flat.png') in issues['flat']
    assert len(issues['duplicates']) == 1
    assert len(issues['duplicates_within']) == 1
    assert report.failed_rules == ['unreadable', 'duplicates']
    text = report.render()
    assert '[FAIL] unreadable' in text and 'corrupt.png' in text
    assert '[warn] too_small' in text and 'FAILED' in text


def test_rules_are_configurable(tmp_path, make_folder):
    root = _broken_dataset(tmp_path / 'd', make_folder)
    report = validate_dataset(str(root), fail_on=('too_small', 'flat'),
                              min_size=10)
    assert report.failed_rules == ['too_small', 'flat']
    report = validate_dataset(str(root), ValidationRules(fail_on='none',
                                                         min_size=4))
    assert report.passed and 'too_small' not in report.issues
    with pytest.raises(ValueError, match='unknown check'):
        ValidationRules(fail_on=['sharpness'])


def test_imbalance_and_empty_class(tmp_path, make_folder):
    root = make_folder(tmp_path / 'd', dict(big=12, small=1))
    (root / 'empty').mkdir()
    report = validate_dataset(str(root), max_imbalance=5)
    assert report.imbalance == 12
    assert report.failed_rules == ['empty_classes', 'imbalance']
    assert 'big has 12 images, small 1' in report.render()


def test_annotation_file_with_missing_file(tmp_path, write_png):
    write_png(tmp_path / 'x.png')
    (tmp_path / 'a.csv').write_text('path,label\nx.png,a\nmissing.png,b\n')
    report = validate_dataset(str(tmp_path / 'a.csv'))
    assert [p for p, _ in report.issues['unreadable']] == [
        str(tmp_path / 'missing.png')]
    assert report.counts == {'all': dict(a=1, b=1)}


def test_built_datasets_and_lists(folder_a):
    train = ImageFolderDataset(str(folder_a), split='train')
    val = ImageFolderDataset(str(folder_a), split='val')
    report = validate_dataset([train, val])
    assert list(report.counts) == ['train', 'val']
    assert report.num_images == 11


def test_unknown_label_raises_with_location(tmp_path, write_png):
    write_png(tmp_path / 'x.png')
    (tmp_path / 'a.json').write_text(json.dumps(
        dict(classes=['a'], samples=[dict(path='x.png', label='zebra')])))
    with pytest.raises(ValueError, match='a.json, sample 0'):
        validate_dataset(str(tmp_path / 'a.json'))
