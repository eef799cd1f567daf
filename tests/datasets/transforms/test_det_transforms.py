"""Detection transforms: boxes and masks follow the image."""
import numpy as np
import pytest
import torch

from dinov3_mm.datasets.transforms import (DetLetterbox, DetPhotometric,
                                           DetRandomCrop, DetRandomFlip,
                                           DetResize, LoadDetAnnotations,
                                           PackDetInputs, masks_to_boxes)
from dinov3_mm.registry import TRANSFORMS

H, W = 40, 80


def sample(with_mask=True):
    """An 80x40 image, two boxes (the second a crowd region) and masks."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :40] = 200
    instances = [
        dict(bbox=[10, 5, 30, 25], bbox_label=1, ignore_flag=0,
             mask=[[10, 5, 30, 5, 30, 25, 10, 25]]),
        dict(bbox=[60, 0, 80, 10], bbox_label=0, ignore_flag=1,
             mask=[[60, 0, 80, 0, 80, 10, 60, 10]]),
    ]
    results = dict(img=img, img_path='x.png', img_id=3, height=H, width=W,
                   instances=instances)
    return LoadDetAnnotations(with_mask=with_mask)(results)


def assert_masks_match_boxes(results):
    boxes = masks_to_boxes(results['gt_masks'])
    np.testing.assert_allclose(boxes, results['gt_bboxes'], atol=1.0)


def test_load_sets_arrays_and_ori_gt():
    r = sample()
    assert r['gt_bboxes'].dtype == np.float32
    assert r['gt_bboxes_labels'].tolist() == [1, 0]
    assert r['gt_ignore_flags'].tolist() == [False, True]
    assert r['gt_masks'].shape == (2, H, W)
    assert r['gt_masks'][0].sum() == 20 * 20
    assert_masks_match_boxes(r)
    assert r['scale_factor'] == (1.0, 1.0) and r['border'] == (0, 0)
    assert r['ori_gt']['masks'][0]['size'] == [H, W]
    assert not sample(with_mask=False)['ori_gt']['masks']


def test_resize_keep_ratio_scales_boxes_and_masks():
    r = DetResize(scale=(40, 40))(sample())  # factor min(40/80, 40/40)
    assert r['img'].shape == (20, 40, 3) and r['img_shape'] == (20, 40)
    np.testing.assert_allclose(r['gt_bboxes'],
                               [[5, 2.5, 15, 12.5], [30, 0, 40, 5]])
    assert r['scale_factor'] == (0.5, 0.5)
    assert r['gt_masks'].shape == (2, 20, 40)
    assert_masks_match_boxes(r)
    assert r['ori_gt']['bboxes'][0].tolist() == [10, 5, 30, 25]


def test_resize_exact_and_size_divisor():
    r = DetResize(scale=(160, 20), keep_ratio=False)(sample())
    assert r['img'].shape[:2] == (20, 160)
    np.testing.assert_allclose(r['gt_bboxes'][0], [20, 2.5, 60, 12.5])
    assert r['scale_factor'] == (2.0, 0.5)
    r = DetResize(scale=(100, 100), size_divisor=16)(sample())
    assert r['img'].shape[:2] == (48, 96)  # 50x100 rounded to 16
    assert r['scale_factor'] == (96 / 80, 48 / 40)


def test_resize_multi_scale_picks_one_per_sample():
    t = DetResize(scales=[(32, 32), (64, 64)])
    np.random.seed(0)
    widths = {t(sample())['img'].shape[1] for _ in range(12)}
    assert widths == {32, 64}
    with pytest.raises(ValueError, match='scale'):
        DetResize(scale=(8, 8), scales=[(8, 8)])


def test_letterbox_centres_and_shifts():
    r = DetLetterbox(size=(40, 40))(sample())  # 80x40 -> 40x20, pad 10 top
    assert r['img'].shape == (40, 40, 3) and r['img_shape'] == (40, 40)
    assert r['border'] == (0, 10)
    assert (r['img'][:10] == 114).all() and (r['img'][30:] == 114).all()
    np.testing.assert_allclose(r['gt_bboxes'][0], [5, 12.5, 15, 22.5])
    assert r['gt_masks'].shape == (2, 40, 40)
    assert_masks_match_boxes(r)
    # packed -> original through scale_factor and border
    sx, sy = r['scale_factor']
    left, top = r['border']
    back = (r['gt_bboxes'][0] - [left, top, left, top]) / [sx, sy, sx, sy]
    np.testing.assert_allclose(back, [10, 5, 30, 25])


def test_flip_horizontal():
    r = DetRandomFlip(prob=1.0)(sample())
    np.testing.assert_allclose(r['gt_bboxes'],
                               [[50, 5, 70, 25], [0, 0, 20, 10]])
    assert r['flip'] and r['flip_direction'] == 'horizontal'
    assert (r['img'][:, 40:] == 200).all() and (r['img'][:, :40] == 0).all()
    assert_masks_match_boxes(r)
    assert not DetRandomFlip(prob=0.0)(sample())['flip']


def test_flip_after_letterbox_keeps_the_mapping_to_the_original():
    r = DetRandomFlip(prob=1.0)(DetLetterbox(size=(60, 60))(sample()))
    # content 60x30 centred: border (0, 15); flipping keeps it (0, 15)
    assert r['border'] == (0, 15)
    sx, _ = r['scale_factor']
    x1 = r['gt_bboxes'][0, 0]
    # the flipped box starts where the original box ended, mirrored
    assert x1 == pytest.approx(60 - 30 * sx)


def test_crop_fixed_window_clips_and_drops(monkeypatch):
    t = DetRandomCrop(crop_size=(20, 40), min_visible=0.3)
    monkeypatch.setattr(t, '_window', lambda h, w: (20, 0, 40, 40))
    r = t(sample(with_mask=False))
    # object 0 (x 10-30) keeps half its area, clipped; the crowd box is out
    np.testing.assert_allclose(r['gt_bboxes'], [[0, 5, 10, 25]])
    assert r['gt_bboxes_labels'].tolist() == [1]
    assert r['img'].shape == (40, 20, 3) and r['img_shape'] == (40, 20)
    assert r['border'] == (-20, 0)
    t.min_visible = 0.6
    r = t(sample(with_mask=False))  # half visible < 0.6: no window keeps
    assert r['img'].shape == (H, W, 3)  # it, so the sample stays uncropped


def test_crop_with_masks_recomputes_boxes(monkeypatch):
    t = DetRandomCrop(crop_size=(60, 20), min_visible=0.3)
    monkeypatch.setattr(t, '_window', lambda h, w: (15, 10, 75, 30))
    r = t(sample())
    # object 0: mask rows 10-25 of 5-25 and cols 15-30 of 10-30 visible
    np.testing.assert_allclose(r['gt_bboxes'], [[0, 0, 15, 15]])
    assert r['gt_masks'].shape == (1, 20, 60)
    assert_masks_match_boxes(r)


def test_crop_ratio_range_stays_consistent():
    np.random.seed(1)
    t = DetRandomCrop(ratio_range=(0.5, 0.9), min_visible=0.2)
    for _ in range(5):
        r = t(sample())
        h, w = r['img'].shape[:2]
        assert r['gt_masks'].shape[1:] == (h, w)
        assert (r['gt_bboxes'][:, 2] <= w).all()
        assert (r['gt_bboxes'][:, 3] <= h).all()
        assert_masks_match_boxes(r)


def test_photometric_colour_only():
    r = sample()
    boxes = r['gt_bboxes'].copy()
    out = DetPhotometric(transforms=[dict(type='RandomBrightnessContrast',
                                          brightness_limit=(0.3, 0.3),
                                          contrast_limit=0, p=1.0)],
                         seed=0)(r)
    assert out['img'].shape == (H, W, 3) and out['img'][0, 0, 0] > 200
    np.testing.assert_array_equal(out['gt_bboxes'], boxes)
    with pytest.raises(ValueError, match='HorizontalFlip'):
        DetPhotometric(transforms=[dict(type='HorizontalFlip')])
    assert isinstance(DetPhotometric()(sample())['img'], np.ndarray)


def test_pack_drops_crowd_and_sets_meta():
    r = DetResize(scale=(40, 40))(sample())
    r['classes'] = ('a', 'b')
    packed = PackDetInputs()(r)
    assert packed['inputs'].shape == (3, 20, 40)
    assert packed['inputs'].dtype == torch.uint8
    gt = packed['data_samples'].gt_instances
    assert gt.bboxes.dtype == torch.float32 and len(gt) == 1
    assert gt.labels.tolist() == [1] and gt.labels.dtype == torch.int64
    assert gt.masks.dtype == torch.bool and gt.masks.shape == (1, 20, 40)
    meta = packed['data_samples'].metainfo
    for key in ('img_path', 'img_id', 'ori_shape', 'img_shape',
                'scale_factor', 'border', 'flip', 'ori_gt', 'classes'):
        assert key in meta
    assert meta['img_shape'] == (20, 40) and meta['ori_shape'] == (H, W)
    assert meta['ori_gt']['iscrowd'].tolist() == [False, True]


def test_registered():
    for name in ('LoadDetAnnotations', 'DetResize', 'DetLetterbox',
                 'DetRandomFlip', 'DetRandomCrop', 'DetPhotometric',
                 'PackDetInputs'):
        assert TRANSFORMS.get(name) is not None


def test_negative_image_through_every_transform():
    r = LoadDetAnnotations(with_mask=True)(dict(
        img=np.full((H, W, 3), 50, np.uint8), img_path='n.png', img_id=1,
        instances=[]))
    assert r['gt_masks'].shape == (0, H, W)
    for t in (DetResize(scale=(64, 32), size_divisor=16),
              DetRandomCrop(ratio_range=(0.5, 0.8)), DetRandomFlip(1.0),
              DetLetterbox(size=48), DetPhotometric()):
        r = t(r)
        assert r['gt_bboxes'].shape == (0, 4)
        assert r['gt_masks'].shape == (0, ) + r['img'].shape[:2]
    gt = PackDetInputs()(r)['data_samples'].gt_instances
    assert gt.bboxes.shape == (0, 4) and gt.masks.shape == (0, 48, 48)
