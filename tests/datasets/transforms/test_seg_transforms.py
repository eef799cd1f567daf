"""GammaCorrection, PackSegInputs and a full segmentation pipeline."""
import numpy as np
import pytest
import torch
from mmseg.structures import SegDataSample
from PIL import Image

from dinov3_mm.datasets.transforms.albu import Albumentations
from dinov3_mm.datasets.transforms.gamma import GammaCorrection, adjust_gamma
from dinov3_mm.datasets.transforms.loading import LoadImage
from dinov3_mm.datasets.transforms.resize import ResizeKeepRatioPad
from dinov3_mm.datasets.transforms.formatting import PackSegInputs
from dinov3_mm.datasets.transforms.seg_loading import LoadSegAnnotation
from dinov3_mm.registry import TRANSFORMS


def test_gamma_numerics():
    img = np.array([[0, 64, 128, 255]], np.uint8)
    out = adjust_gamma(img, 2.0)
    expected = np.rint(255 * (img / 255.0)**2).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8
    assert out[0, 0] == 0 and out[0, 3] == 255
    res = GammaCorrection(gamma=0.5, prob=1.0)(dict(img=img.copy()))
    np.testing.assert_array_equal(
        res['img'], np.rint(255 * np.sqrt(img / 255.0)).astype(np.uint8))
    assert res['gamma'] == 0.5


def test_gamma_prob_and_range():
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)
    mask = np.ones((8, 8), np.uint8)
    res = GammaCorrection(prob=0.0)(dict(img=img.copy(), gt_seg_map=mask))
    np.testing.assert_array_equal(res['img'], img)
    np.random.seed(0)
    t = GammaCorrection(gamma_range=(0.75, 1.5), prob=1.0)
    for _ in range(20):
        res = t(dict(img=img.copy(), gt_seg_map=mask.copy()))
        assert 0.75 <= res['gamma'] <= 1.5
        assert res['img'].dtype == np.uint8 and res['img'].shape == img.shape
        np.testing.assert_array_equal(res['gt_seg_map'], mask)
    with pytest.raises(ValueError):
        GammaCorrection(gamma_range=(1.5, 0.75))
    with pytest.raises(ValueError):
        GammaCorrection(gamma=0)
    with pytest.raises(TypeError):
        adjust_gamma(img.astype(np.float32), 1.0)


def test_pack_seg_inputs():
    img = np.zeros((5, 7, 3), np.uint8)
    seg = np.arange(35, dtype=np.uint8).reshape(5, 7)
    out = PackSegInputs()(dict(img=img, gt_seg_map=seg, img_path='a.png',
                               seg_map_path='a_m.png', ori_shape=(5, 7),
                               img_shape=(5, 7), other=1))
    assert out['inputs'].dtype == torch.uint8
    assert out['inputs'].shape == (3, 5, 7)
    sample = out['data_samples']
    assert isinstance(sample, SegDataSample)
    data = sample.gt_sem_seg.data
    assert data.dtype == torch.int64 and data.shape == (1, 5, 7)
    assert torch.equal(data[0], torch.from_numpy(seg).long())
    assert sample.metainfo['seg_map_path'] == 'a_m.png'
    assert 'other' not in sample.metainfo
    # no mask: inputs only
    out = PackSegInputs()(dict(img=img))
    assert 'gt_sem_seg' not in out['data_samples']


def test_pipeline_keeps_image_and_mask_aligned(tmp_path):
    # a 40x60 image with a bright square in the top-left quadrant
    img = np.zeros((40, 60, 3), np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    img[5:15, 5:20] = 200
    mask[5:15, 5:20] = 2
    Image.fromarray(img).save(tmp_path / 'x.png')
    Image.fromarray(mask).save(tmp_path / 'x_m.png')
    pipeline = [
        TRANSFORMS.build(dict(type='LoadImage')),
        TRANSFORMS.build(dict(type='LoadSegAnnotation')),
        TRANSFORMS.build(dict(type='ResizeKeepRatioPad', size=(60, 60))),
        Albumentations(transforms=[dict(type='HorizontalFlip', p=1.0)],
                       seed=0),
        TRANSFORMS.build(dict(type='PackSegInputs')),
    ]
    assert isinstance(pipeline[0], LoadImage)
    assert isinstance(pipeline[1], LoadSegAnnotation)
    assert isinstance(pipeline[2], ResizeKeepRatioPad)
    results = dict(img_path=str(tmp_path / 'x.png'),
                   seg_map_path=str(tmp_path / 'x_m.png'), num_classes=3)
    for t in pipeline:
        results = t(results)
    inputs = results['inputs']
    seg = results['data_samples'].gt_sem_seg.data[0]
    assert inputs.shape == (3, 60, 60) and seg.shape == (60, 60)
    # resize keeps scale 1, pads 10 rows top and bottom; the flip moves the
    # square from columns 5..19 to 40..54
    expected = torch.zeros(60, 60, dtype=torch.long)
    expected[:10] = 255
    expected[50:] = 255
    expected[15:25, 40:55] = 2
    assert torch.equal(seg, expected)
    bright = inputs[0] > 100
    assert torch.equal(bright, seg == 2)


def test_test_pipeline_keeps_original_mask_and_padding(tmp_path):
    """Non-square image: the mask stays at the original size and the packed
    pad_border lets the segmentor cut the padding off its logits."""
    from dinov3_mm.models.segmentors.dinov3_segmentor import DINOv3Segmentor
    img = np.random.default_rng(0).integers(0, 255, (32, 64, 3), np.uint8)
    mask = np.zeros((32, 64), np.uint8)
    mask[:, 32:] = 2
    Image.fromarray(img).save(tmp_path / 'a.png')
    Image.fromarray(mask).save(tmp_path / 'a_mask.png')
    steps = [LoadImage(), ResizeKeepRatioPad(size=64),
             LoadSegAnnotation(), PackSegInputs()]
    results = dict(img_path=str(tmp_path / 'a.png'),
                   seg_map_path=str(tmp_path / 'a_mask.png'))
    for step in steps:
        results = step(results)
    sample = results['data_samples']
    assert results['inputs'].shape == (3, 64, 64)
    assert sample.gt_sem_seg.data.shape == (1, 32, 64)
    assert sample.pad_border == (16, 16, 0, 0)
    # logits say class 1 in the padding and class 0 in the image
    logits = torch.zeros(3, 64, 64)
    logits[1, :16] = logits[1, 48:] = 10
    cut = DINOv3Segmentor._to_original(logits, sample.metainfo)
    assert cut.shape == (3, 32, 64)
    assert (cut.argmax(0) == 0).all()
