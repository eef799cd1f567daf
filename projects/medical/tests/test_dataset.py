"""VolumeSliceDataset: slice counts, empty-slice sampling, 2.5D, errors."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from dinov3_mm.registry import DATASETS, MODELS
from dinov3_mm_medical.datasets import VolumeSliceDataset
from dinov3_mm_medical.synthetic import MRI_CLASSES

CLASSES = ('background', 'organ', 'tumour')
LOADERS = [dict(type='LoadVolumeSlice'),
           dict(type='LoadVolumeSliceAnnotation')]


def _foreground_per_slice(label_dir: Path):
    import nibabel as nib
    flags = []
    for path in sorted(label_dir.glob('*.nii.gz')):
        labels = np.asarray(nib.load(str(path)).dataobj)
        flags.append((labels > 0).any(axis=(0, 1)))
    return flags


def _infos(dataset) -> list:
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def _dataset(root, **kwargs) -> VolumeSliceDataset:
    args = dict(data_root=str(root), img_dir='images/train',
                ann_dir='labels/train', classes=MRI_CLASSES,
                orientation='RAS')
    args.update(kwargs)
    return VolumeSliceDataset(**args)


def test_slice_counts_and_empty_ratio(mri_root):
    flags = _foreground_per_slice(mri_root / 'labels' / 'train')
    fg = sum(int(f.sum()) for f in flags)
    empty = sum(int((~f).sum()) for f in flags)
    assert (fg, empty) == (14, 10)  # 2 volumes of 12 slices
    half = _dataset(mri_root, empty_slice_ratio=0.5, seed=0)
    assert len(half) == fg + 5
    assert half.slice_stats == dict(volumes=2, slices=24, foreground=14,
                                    empty=10, empty_kept=5, kept=19)
    kept = {(i['case'], i['slice_index']) for i in _infos(half)}
    for v, case_flags in enumerate(flags):
        for k, has_fg in enumerate(case_flags):
            if has_fg:
                assert (f'case_{v:03d}', k) in kept
    first = half.get_data_info(0)
    assert first['slice_id'] == f"case_000_k{first['slice_index']:03d}"
    again = _dataset(mri_root, empty_slice_ratio=0.5, seed=0)
    assert [i['slice_id'] for i in _infos(again)] == [
        i['slice_id'] for i in _infos(half)]
    other = _dataset(mri_root, empty_slice_ratio=0.5, seed=1)
    assert len(other) == 19
    assert {i['slice_id'] for i in _infos(other)} != {
        i['slice_id'] for i in _infos(half)}
    assert len(_dataset(mri_root, empty_slice_ratio=0.0)) == 14
    assert len(_dataset(mri_root, empty_slice_ratio=1.0)) == 24
    assert half.metainfo['classes'] == MRI_CLASSES
    with pytest.raises(ValueError, match='empty_slice_ratio=1.5'):
        _dataset(mri_root, empty_slice_ratio=1.5)


@pytest.fixture
def ramp_root(tmp_path, write_nifti, lps_affine):
    """One case whose image slice k (axis 2) is the constant k."""
    image = np.broadcast_to(np.arange(5, dtype=np.float32),
                            (8, 6, 5)).copy()
    labels = np.zeros((8, 6, 5), np.uint8)
    labels[2:4, 1:3, 1:4] = 1
    labels[5, 5, 2] = 2
    labels[0, 0, 4] = 255
    write_nifti(tmp_path / 'images' / 'train' / 'a.nii.gz', image,
                lps_affine())
    write_nifti(tmp_path / 'labels' / 'train' / 'a.nii.gz', labels,
                lps_affine())
    return tmp_path


def test_2p5d_context_channels_clamped(ramp_root):
    dataset = VolumeSliceDataset(data_root=str(ramp_root), classes=CLASSES,
                                 context=1, pipeline=LOADERS)
    assert [i['slice_index'] for i in _infos(dataset)] == [0, 1, 2, 3, 4]
    # slice 0 and 4 are empty (255 is ignored), kept with the default ratio
    assert dataset.slice_stats['empty'] == 2
    first, middle, last = dataset[0], dataset[2], dataset[4]
    assert first['img'].shape == (8, 6, 3)
    np.testing.assert_array_equal(first['img'][0, 0], [0, 0, 1])
    np.testing.assert_array_equal(middle['img'][0, 0], [1, 2, 3])
    np.testing.assert_array_equal(last['img'][0, 0], [3, 4, 4])
    assert middle['gt_seg_map'].shape == (8, 6)
    assert middle['gt_seg_map'].dtype == np.uint8
    assert int(middle['gt_seg_map'].sum()) == 4 * 1 + 2
    wide = VolumeSliceDataset(data_root=str(ramp_root), classes=CLASSES,
                              context=2, pipeline=LOADERS)
    np.testing.assert_array_equal(wide[1]['img'][0, 0], [0, 0, 1, 2, 3])
    flat = VolumeSliceDataset(data_root=str(ramp_root), classes=CLASSES,
                              pipeline=LOADERS)
    assert flat[3]['img'].shape == (8, 6)
    assert float(flat[3]['img'][0, 0]) == 3.0


def test_orientation_changes_the_slicing(ramp_root):
    stored = VolumeSliceDataset(data_root=str(ramp_root), classes=CLASSES,
                                axis=0, pipeline=LOADERS)
    ras = VolumeSliceDataset(data_root=str(ramp_root), classes=CLASSES,
                             axis=0, orientation='RAS', pipeline=LOADERS)
    # axis 0 is stored L -> R flipped: RAS slice i is stored slice 7 - i
    a = stored[2]['gt_seg_map']
    b = ras[len(ras) - 1 - 2]['gt_seg_map']
    assert stored.get_data_info(2)['slice_index'] == 2
    assert ras.get_data_info(len(ras) - 1 - 2)['slice_index'] == 5
    np.testing.assert_array_equal(b, a[::-1])  # axis 1 (P -> A) flipped too


def test_config_pipeline_plugs_into_core(mri_root, repo_root):
    cfg = Config.fromfile(
        str(repo_root / 'configs/medical/vitb16_unet_mri.py'))
    train_cfg = cfg.train_dataloader.dataset
    train_cfg.data_root = str(mri_root)
    train_cfg.pipeline[5].scale = 32
    train_cfg.pipeline[6].crop_size = 32
    dataset = DATASETS.build(train_cfg)
    assert len(dataset) == 14 + 2  # 20 % of the 10 empty slices
    batch = pseudo_collate([dataset[0], dataset[1]])
    assert batch['inputs'][0].shape == (3, 32, 32)
    assert str(batch['inputs'][0].dtype) == 'torch.uint8'
    sample = batch['data_samples'][0]
    assert sample.gt_sem_seg.data.shape == (1, 32, 32)
    assert sample.metainfo['slice_id'].startswith('case_000_k')
    preprocessor = MODELS.build(dict(type='SegDataPreprocessor'))
    out = preprocessor(batch, training=True)
    assert tuple(out['inputs'].shape) == (2, 3, 32, 32)
    val_cfg = cfg.val_dataloader.dataset
    val_cfg.data_root = str(mri_root)
    val_cfg.pipeline[4].size = 32
    val = DATASETS.build(val_cfg)
    assert len(val) == 12
    sample = val[6]
    seg = sample['data_samples'].gt_sem_seg.data
    assert set(seg.unique().tolist()) <= {0, 1, 2, 3}  # no padding
    # the mask keeps the slice's size; the metainfo undoes the letterbox
    meta = sample['data_samples'].metainfo
    assert tuple(seg.shape[-2:]) == tuple(meta['ori_shape']) != (32, 32)
    assert tuple(sample['inputs'].shape[-2:]) == (32, 32)
    assert tuple(meta['img_shape']) == (32, 32) and 'pad_border' in meta


# ------------------------------------------------------------------ errors
def test_mask_shape_mismatch_names_both_files(tmp_path, write_nifti):
    image = write_nifti(tmp_path / 'images/train/a.nii.gz',
                        np.zeros((8, 6, 5), np.float32))
    mask = write_nifti(tmp_path / 'labels/train/a.nii.gz',
                       np.zeros((8, 6, 4), np.uint8))
    with pytest.raises(ValueError) as info:
        VolumeSliceDataset(data_root=str(tmp_path), classes=CLASSES)
    message = str(info.value)
    assert f'Mask {mask} has shape (8, 6, 4)' in message
    assert f'image {image} has shape (8, 6, 5)' in message


def test_mask_affine_mismatch_names_both_files(tmp_path, write_nifti,
                                               lps_affine):
    image = write_nifti(tmp_path / 'images/train/a.nii.gz',
                        np.zeros((8, 6, 5), np.float32), lps_affine())
    shifted = lps_affine(origin=(14.0, -7.5, 40.0))
    mask = write_nifti(tmp_path / 'labels/train/a.nii.gz',
                       np.zeros((8, 6, 5), np.uint8), shifted)
    with pytest.raises(ValueError) as info:
        VolumeSliceDataset(data_root=str(tmp_path), classes=CLASSES)
    message = str(info.value)
    assert f'Mask {mask} and image {image} have different affines' in message
    assert 'largest difference 2 ' in message
    # within the tolerance it is accepted
    VolumeSliceDataset(data_root=str(tmp_path), classes=CLASSES,
                       affine_atol=2.5)


def test_no_volumes_and_missing_masks(tmp_path, write_nifti):
    (tmp_path / 'images/train').mkdir(parents=True)
    (tmp_path / 'labels/train').mkdir(parents=True)
    img_dir = tmp_path / 'images/train'
    with pytest.raises(ValueError) as info:
        VolumeSliceDataset(data_root=str(tmp_path), classes=CLASSES)
    assert f'No image volume found in {img_dir}; expected ' \
        '<img_dir>/<case>.nii.gz' in str(info.value)
    with pytest.raises(FileNotFoundError, match='images/val does not exist'
                       '; expected <img_dir>/<case>.nii.gz'):
        VolumeSliceDataset(data_root=str(tmp_path), classes=CLASSES,
                           img_dir='images/val')
    write_nifti(img_dir / 'b.nii.gz', np.zeros((4, 4, 2), np.float32))
    with pytest.raises(FileNotFoundError,
                       match=r'1 image volume\(s\) in .* have no mask in '
                       r'.*labels/train: b\.nii\.gz'):
        VolumeSliceDataset(data_root=str(tmp_path), classes=CLASSES)


def test_mask_values_outside_classes(tmp_path, write_nifti):
    write_nifti(tmp_path / 'images/train/a.nii.gz',
                np.zeros((4, 4, 2), np.float32))
    labels = np.zeros((4, 4, 2), np.uint8)
    labels[0, 0, 0] = 7
    mask = write_nifti(tmp_path / 'labels/train/a.nii.gz', labels)
    with pytest.raises(ValueError, match=f'Mask {mask} has values \\[7\\] '
                       'outside the 3 classes'):
        VolumeSliceDataset(data_root=str(tmp_path), classes=CLASSES)


def test_dicom_image_with_nifti_mask(tmp_path, write_ct_series,
                                     write_nifti):
    stored = np.zeros((6, 5, 4), np.int16)
    stored[:, :, 2] = 1064  # 40 HU with the -1024 intercept
    series = write_ct_series(tmp_path / 'images/train/case_a', stored)
    labels = np.zeros((6, 5, 4), np.uint8)
    labels[1:3, 1:3, 2] = 1
    write_nifti(tmp_path / 'labels/train/case_a.nii.gz', labels,
                series['affine'])
    dataset = VolumeSliceDataset(
        data_root=str(tmp_path), classes=CLASSES, empty_slice_ratio=0.0,
        pipeline=LOADERS + [dict(type='CTWindow', preset='brain')])
    assert len(dataset) == 1
    assert dataset.get_data_info(0)['case'] == 'case_a'
    sample = dataset[0]
    assert sample['slice_index'] == 2
    np.testing.assert_array_equal(sample['img'], np.full((6, 5), 128))
    assert int(sample['gt_seg_map'].sum()) == 4
