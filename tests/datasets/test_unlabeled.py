"""UnlabeledImageDataset: listing, errors and skipping unreadable files."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dinov3_mm.datasets.transforms.multicrop  # noqa: F401  (registers)
import dinov3_mm.datasets.unlabeled  # noqa: F401  (registers)
from dinov3_mm.datasets.unlabeled import UnlabeledImageDataset
from dinov3_mm.registry import DATASETS
from dinov3_mm.structures.data_sample import DataSample


def _save(path: Path, fmt: str, size=(20, 16), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data).save(path, format=fmt)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """Nested folders, mixed formats and case, a text file, a hidden file."""
    root = tmp_path / 'unlabeled'
    _save(root / 'site_b' / 'day2' / 'img3.JPEG', 'JPEG', seed=3)
    _save(root / 'site_a' / 'img1.PNG', 'PNG', seed=1)
    _save(root / 'site_a' / 'img2.tif', 'TIFF', seed=2)
    _save(root / 'top.Bmp', 'BMP', seed=4)
    _save(root / 'scan.TIFF', 'TIFF', seed=5)
    _save(root / '.hidden.png', 'PNG', seed=6)
    _save(root / '.cache' / 'x.png', 'PNG', seed=7)
    (root / 'notes.txt').write_text('not an image')
    return root


def build(root, **kwargs):
    return DATASETS.build(
        dict(type='UnlabeledImageDataset', data_root=str(root), **kwargs))


def test_lists_every_image_sorted_recursive(tree, monkeypatch):
    logged = []
    monkeypatch.setattr('dinov3_mm.datasets.unlabeled.print_log',
                        lambda msg, **kwargs: logged.append(msg))
    dataset = build(tree)
    assert isinstance(dataset, UnlabeledImageDataset)
    rel = [str(Path(dataset.get_data_info(i)['img_path']).relative_to(tree))
           for i in range(len(dataset))]
    assert rel == ['scan.TIFF', 'top.Bmp', 'site_a/img1.PNG',
                   'site_a/img2.tif', 'site_b/day2/img3.JPEG']
    info = dataset.get_data_info(0)
    assert set(info) == {'img_path', 'sample_idx'}  # sample_idx: mmengine
    assert dataset.ignored_files == [str(tree / 'notes.txt')]
    assert any('ignored 1 file' in m for m in logged)

    flat = build(tree, recursive=False)
    assert [Path(flat.get_data_info(i)['img_path']).name
            for i in range(len(flat))] == ['scan.TIFF', 'top.Bmp']

    only_png = build(tree, extensions=['png'])
    assert len(only_png) == 1


def test_pipeline_loads_every_format(tree):
    dataset = build(tree, pipeline=[dict(type='LoadImage')])
    for i in range(len(dataset)):
        out = dataset[i]
        assert out['img'].shape == (16, 20, 3)
        assert out['img'].dtype == np.uint8


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        build(tmp_path / 'nowhere')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError) as info:
        build(empty)
    assert str(empty) in str(info.value)
    assert '.tiff' in str(info.value) and '.png' in str(info.value)
    (empty / 'readme.md').write_text('x')
    (empty / 'sub').mkdir()
    with pytest.raises(ValueError, match='no image'):
        build(empty)
    _save(empty / 'sub' / 'a.png', 'PNG')
    with pytest.raises(ValueError, match='directly in'):
        build(empty, recursive=False)
    assert len(build(empty)) == 1


@pytest.fixture
def with_corrupt(tree) -> Path:
    (tree / 'site_a' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\nnonsense')
    return tree


def _index_of(dataset, name):
    return next(i for i in range(len(dataset))
                if dataset.get_data_info(i)['img_path'].endswith(name))


def test_unreadable_file_raises_by_default(with_corrupt):
    dataset = build(with_corrupt, pipeline=[dict(type='LoadImage')])
    with pytest.raises(ValueError, match='Cannot read image .*broken.png'):
        dataset[_index_of(dataset, 'broken.png')]


def test_unreadable_file_skipped(with_corrupt, monkeypatch):
    logged = []
    monkeypatch.setattr('dinov3_mm.datasets.unlabeled.print_log',
                        lambda msg, **kwargs: logged.append(msg))
    dataset = build(with_corrupt, pipeline=[dict(type='LoadImage')],
                    skip_unreadable=True)
    bad = _index_of(dataset, 'broken.png')
    np.random.seed(0)
    for _ in range(3):
        out = dataset[bad]
        assert not out['img_path'].endswith('broken.png')
        assert out['img'].shape == (16, 20, 3)
    broken = str(with_corrupt / 'site_a' / 'broken.png')
    assert dataset.skipped == [broken]
    warnings = [m for m in logged if 'skipping unreadable' in m]
    assert len(warnings) == 1 and broken in warnings[0]
    # the replacement index comes from numpy's global generator
    np.random.seed(1)
    first = dataset[bad]['img_path']
    np.random.seed(1)
    assert dataset[bad]['img_path'] == first


def test_only_loader_errors_are_skipped(tree):
    def broken_transform(results):
        raise ValueError('bug in a transform')

    dataset = build(tree, pipeline=[dict(type='LoadImage'), broken_transform],
                    skip_unreadable=True)
    with pytest.raises(ValueError, match='bug in a transform'):
        dataset[0]


def test_every_file_unreadable(tmp_path, monkeypatch):
    monkeypatch.setattr('dinov3_mm.datasets.unlabeled.print_log',
                        lambda msg, **kwargs: None)
    root = tmp_path / 'bad'
    root.mkdir()
    for name in ('a.png', 'b.JPG'):
        (root / name).write_bytes(b'garbage')
    dataset = build(root, pipeline=[dict(type='LoadImage')],
                    skip_unreadable=True)
    with pytest.raises(RuntimeError, match='none of the 2 image'):
        dataset[0]


def test_skip_unreadable_needs_train_mode(tree):
    with pytest.raises(ValueError, match='test_mode'):
        build(tree, skip_unreadable=True, test_mode=True)


def test_full_ssl_pipeline(tree):
    dataset = build(tree, pipeline=[
        dict(type='LoadImage'),
        dict(type='DINOMultiCrop', global_crops_size=32, local_crops_size=16,
             local_crops_number=3),
        dict(type='PackMultiCropInputs'),
    ])
    out = dataset[0]
    assert out['inputs']['global_crops'].shape == (2, 3, 32, 32)
    assert out['inputs']['local_crops'].shape == (3, 3, 16, 16)
    assert out['inputs']['global_crops'].dtype == torch.uint8
    sample = out['data_samples']
    assert isinstance(sample, DataSample)
    assert sample.img_path == str(tree / 'scan.TIFF')
    assert tuple(sample.ori_shape) == (16, 20)
