"""ResizeKeepRatioPad, Albumentations and PackClsInputs."""
import warnings

import numpy as np
import pytest
import torch

from dinov3_mm.datasets.transforms import (ALBU_PRESETS, Albumentations,
                                           PackClsInputs, ResizeKeepRatioPad)
from dinov3_mm.registry import TRANSFORMS
from dinov3_mm.structures.data_sample import DataSample


def _img(h, w, value=200):
    return np.full((h, w, 3), value, np.uint8)


def test_resize_wide_image_pads_rows():
    out = ResizeKeepRatioPad(size=32, pad_val=7)(dict(img=_img(10, 40)))
    img = out['img']
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert out['img_shape'] == (8, 32) and out['pad_shape'] == (32, 32)
    assert out['scale_factor'] == (0.8, 0.8)
    assert out['pad_border'] == (12, 12, 0, 0)
    assert (img[:12] == 7).all() and (img[-12:] == 7).all()
    assert (img[12:20] == 200).all()


def test_resize_tall_image_rect_target_bottom_right():
    transform = ResizeKeepRatioPad(size=(20, 30), pad_val=(1, 2, 3),
                                   center=False)
    out = transform(dict(img=_img(40, 10)))
    assert out['img'].shape == (20, 30, 3)
    assert out['img_shape'] == (20, 5)
    assert out['img'][0, 29].tolist() == [1, 2, 3]
    assert out['img'][0, 0].tolist() == [200, 200, 200]


def test_resize_upscales_and_handles_masks():
    seg = np.zeros((5, 10), np.uint8)
    seg[:, 5:] = 3
    out = ResizeKeepRatioPad(size=20)(dict(img=_img(5, 10), gt_seg_map=seg))
    assert out['gt_seg_map'].shape == (20, 20)
    assert set(np.unique(out['gt_seg_map'])) == {0, 3, 255}
    assert (out['gt_seg_map'][:5] == 255).all()


def test_resize_bad_args():
    with pytest.raises(ValueError, match='size'):
        ResizeKeepRatioPad(size=(0, 3))
    with pytest.raises(ValueError, match='interpolation'):
        ResizeKeepRatioPad(interpolation='magic')


@pytest.mark.parametrize('preset', sorted(ALBU_PRESETS))
def test_presets_run_deterministically_without_warnings(preset):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    seg = (rng.random((32, 48)) > 0.5).astype(np.uint8)
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for _ in range(2):
            transform = TRANSFORMS.build(
                dict(type='Albumentations', preset=preset, seed=0))
            runs.append([transform(dict(img=img.copy(), gt_seg_map=seg))
                         for _ in range(4)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
        assert a['img'].dtype == np.uint8
        assert a['img_shape'] == a['img'].shape[:2]
    assert any(not np.array_equal(r['img'], img) for r in runs[0])


def test_medical_preset_has_no_flips_or_color_jitter():
    names = {c['type'] for c in ALBU_PRESETS['medical']}
    assert not names & {'VerticalFlip', 'HorizontalFlip', 'ColorJitter',
                        'HueSaturationValue'}


def test_custom_nested_transforms_and_random_resized_crop():
    transform = Albumentations(transforms=[
        dict(type='RandomResizedCrop', size=(16, 16), p=1.0),
        dict(type='OneOf', p=1.0, transforms=[
            dict(type='HorizontalFlip', p=1.0),
            dict(type='VerticalFlip', p=1.0)]),
    ], seed=0)
    out = transform(dict(img=_img(30, 40)))
    assert out['img'].shape == (16, 16, 3) and out['img_shape'] == (16, 16)


def test_flip_moves_pixels_and_mask_together():
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, 0] = 255
    seg = np.zeros((4, 6), np.uint8)
    seg[:, 0] = 1
    out = Albumentations([dict(type='HorizontalFlip', p=1.0)])(
        dict(img=img, gt_seg_map=seg))
    assert (out['img'][:, -1] == 255).all() and (out['gt_seg_map'][:, -1]
                                                 == 1).all()


def test_unseeded_follows_numpy_seed():
    img = np.random.default_rng(1).integers(0, 256, (16, 16, 3),
                                            dtype=np.uint8)
    outs = []
    for _ in range(2):
        np.random.seed(123)
        transform = Albumentations(preset='satellite')
        outs.append([transform(dict(img=img.copy()))['img']
                     for _ in range(3)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_albumentations_errors():
    with pytest.raises(ValueError, match='preset'):
        Albumentations(preset='underwater')
    with pytest.raises(ValueError, match='transforms'):
        Albumentations()
    with pytest.raises(KeyError, match='HorizontalFlip'):
        Albumentations([dict(type='HorizontalFlipp')])


def test_pack_cls_inputs():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = PackClsInputs()(dict(img=img, gt_label=2, img_path='x.png',
                               img_shape=(2, 3), ori_shape=(4, 6),
                               num_classes=5, other='dropped'))
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 2, 3)
    assert torch.equal(inputs, torch.from_numpy(img).permute(2, 0, 1))
    assert isinstance(sample, DataSample)
    assert sample.gt_label.tolist() == [2]
    assert sample.metainfo == dict(img_path='x.png', img_shape=(2, 3),
                                   ori_shape=(4, 6), num_classes=5)


def test_pack_multi_label_and_unlabelled():
    img = np.zeros((2, 2, 3), np.uint8)
    sample = PackClsInputs()(dict(img=img, gt_label=[0, 3]))['data_samples']
    assert sample.gt_label.tolist() == [0, 3]
    sample = PackClsInputs(meta_keys=())(dict(img=img))['data_samples']
    assert 'gt_label' not in sample and sample.metainfo == {}
