"""SegFolderDataset on real folders, and the synthetic shapes writer."""
import os

import numpy as np
import pytest
from PIL import Image

from dinov3_mm.datasets.seg_folder import SegFolderDataset
from dinov3_mm.datasets.synthetic_seg import (SEG_CLASSES, SEG_PALETTE,
                                              write_seg_shapes_dataset)
from dinov3_mm.datasets.transforms import formatting  # noqa: F401
from dinov3_mm.datasets.transforms import seg_loading  # noqa: F401
from dinov3_mm.registry import DATASETS

CLASSES = ('bg', 'a', 'b')


def _write(root, stems, masks=True, split='train'):
    for i, stem in enumerate(stems):
        img_dir = root / 'img_dir' / split
        ann_dir = root / 'ann_dir' / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 8, 3), 10 * i, np.uint8)).save(
            img_dir / f'{stem}.png')
        if masks:
            Image.fromarray(np.full((6, 8), i % 3, np.uint8)).save(
                ann_dir / f'{stem}.png')


def test_pairs_by_stem(tmp_path):
    _write(tmp_path, ['b', 'a', 'c'])
    ds = SegFolderDataset(data_root=str(tmp_path), classes=CLASSES)
    assert len(ds) == 3
    info = ds.get_data_info(0)
    assert info['img_path'].endswith(os.path.join('img_dir', 'train',
                                                  'a.png'))
    assert info['seg_map_path'].endswith(os.path.join('ann_dir', 'train',
                                                      'a.png'))
    assert info['reduce_zero_label'] is False and info['seg_fields'] == []
    assert ds.metainfo['classes'] == CLASSES
    palette = ds.metainfo['palette']
    assert len(palette) == 3 and all(len(c) == 3 for c in palette)
    assert len({tuple(c) for c in palette}) == 3


def test_given_palette_and_registry(tmp_path):
    _write(tmp_path, ['a'])
    pal = [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    ds = DATASETS.build(dict(type='SegFolderDataset', data_root=str(tmp_path),
                             classes=CLASSES, palette=pal,
                             reduce_zero_label=True))
    assert ds.metainfo['palette'] == pal
    assert ds.get_data_info(0)['reduce_zero_label'] is True
    with pytest.raises(ValueError, match='palette'):
        SegFolderDataset(data_root=str(tmp_path), classes=CLASSES,
                         palette=pal[:2])
    with pytest.raises(ValueError, match='classes'):
        SegFolderDataset(data_root=str(tmp_path))


def test_image_without_mask(tmp_path):
    _write(tmp_path, ['a', 'b'])
    _write(tmp_path, ['lonely'], masks=False)
    with pytest.raises(FileNotFoundError, match='lonely.png'):
        SegFolderDataset(data_root=str(tmp_path), classes=CLASSES)
    ds = SegFolderDataset(data_root=str(tmp_path), classes=CLASSES,
                          allow_missing_masks=True)
    assert len(ds) == 3
    assert ds.get_data_info(2)['seg_map_path'] is None


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='img_dir'):
        SegFolderDataset(data_root=str(tmp_path), classes=CLASSES)
    (tmp_path / 'img_dir' / 'train').mkdir(parents=True)
    (tmp_path / 'ann_dir' / 'train').mkdir(parents=True)
    with pytest.raises(ValueError, match='no'):
        SegFolderDataset(data_root=str(tmp_path), classes=CLASSES)


def test_synthetic_dataset_through_pipeline(tmp_path):
    root = write_seg_shapes_dataset(str(tmp_path / 'shapes'), num_train=6,
                                    num_val=3, size=32, seed=1)
    for split, n in (('train', 6), ('val', 3)):
        imgs = sorted(os.listdir(os.path.join(root, 'img_dir', split)))
        anns = sorted(os.listdir(os.path.join(root, 'ann_dir', split)))
        assert imgs == anns and len(imgs) == n
    values = set()
    for split in ('train', 'val'):
        pipeline = [dict(type='LoadImage'), dict(type='LoadSegAnnotation'),
                    dict(type='PackSegInputs')]
        ds = SegFolderDataset(data_root=root, img_dir=f'img_dir/{split}',
                              ann_dir=f'ann_dir/{split}', classes=SEG_CLASSES,
                              palette=SEG_PALETTE, pipeline=pipeline)
        for i in range(len(ds)):
            out = ds[i]
            seg = out['data_samples'].gt_sem_seg.data
            assert out['inputs'].shape == (3, 32, 32)
            assert seg.shape == (1, 32, 32)
            values |= set(seg.unique().tolist())
            # shape pixels are bright, background pixels dark
            img = out['inputs'].float().mean(0)
            fg = seg[0] > 0
            if fg.any():
                assert img[fg].min() > img[~fg].max() - 1e-6 or \
                    img[fg].mean() > img[~fg].mean() + 40
    assert values <= {0, 1, 2, 3} and 0 in values and len(values) >= 3
    # reproducible by seed
    again = write_seg_shapes_dataset(str(tmp_path / 'again'), num_train=6,
                                     num_val=3, size=32, seed=1)
    a = np.asarray(Image.open(os.path.join(root, 'ann_dir/train',
                                           'train_00000.png')))
    b = np.asarray(Image.open(os.path.join(again, 'ann_dir/train',
                                           'train_00000.png')))
    np.testing.assert_array_equal(a, b)
