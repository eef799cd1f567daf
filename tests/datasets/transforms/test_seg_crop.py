"""RandomRescale, RandomCropCatRatio and the paired albumentations pipeline."""
import inspect

import cv2
import numpy as np
import pytest
import torch

from dinov3_mm.datasets.seg_folder import SegFolderDataset
from dinov3_mm.datasets.synthetic_seg import (SEG_CLASSES, SEG_PALETTE,
                                              write_seg_shapes_dataset)
from dinov3_mm.datasets.transforms import formatting  # noqa: F401
from dinov3_mm.datasets.transforms import seg_loading  # noqa: F401
from dinov3_mm.datasets.transforms.albu import Albumentations
from dinov3_mm.datasets.transforms.seg_crop import (RandomCropCatRatio,
                                                    RandomRescale,
                                                    rescale_size,
                                                    resize_nearest)
from dinov3_mm.registry import TRANSFORMS


def _sample(h=30, w=50, seed=0, classes=4):
    rng = np.random.default_rng(seed)
    return dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                gt_seg_map=rng.integers(0, classes, (h, w), dtype=np.uint8),
                seg_fields=['gt_seg_map'], img_shape=(h, w))


def _coords(h, w):
    """Image whose channels are the row and column; mask row // 5 + 1."""
    rows, cols = np.mgrid[0:h, 0:w]
    img = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
    return dict(img=img, gt_seg_map=(rows // 5 + 1).astype(np.uint8),
                seg_fields=['gt_seg_map'])


# --------------------------------------------------------------- rescale
@pytest.mark.parametrize('keep_ratio', [True, False])
def test_rescale_matches_mmcv_random_resize(keep_ratio):
    from mmcv.transforms import RandomResize
    ours = RandomRescale(scale=(64, 96), ratio_range=(0.5, 2.0),
                         keep_ratio=keep_ratio)
    # mmcv's scale is (w, h)
    ref = RandomResize(scale=(96, 64), ratio_range=(0.5, 2.0),
                       keep_ratio=keep_ratio)
    for seed in range(4):
        np.random.seed(seed)
        a = ours(_sample(seed=seed))
        np.random.seed(seed)
        b = ref(_sample(seed=seed))
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
        assert a['img_shape'] == tuple(b['img_shape'])
        np.testing.assert_allclose(a['scale_factor'], b['scale_factor'])
        assert a['gt_seg_map'].shape == a['img'].shape[:2] == a['img_shape']


def test_rescale_sizes_and_nearest_mask():
    # ratio 1: a 30x50 image fitted into long side 200, short side 60
    out = RandomRescale(scale=(60, 200), ratio_range=(1.0, 1.0))(
        _sample(30, 50))
    assert out['img_shape'] == (60, 100) and out['img'].shape == (60, 100, 3)
    assert out['scale_factor'] == (2.0, 2.0) and out['keep_ratio'] is True
    # nearest: every 2x2 block is one source label, no new values
    src = _sample(30, 50)['gt_seg_map']
    np.testing.assert_array_equal(out['gt_seg_map'],
                                  src.repeat(2, 0).repeat(2, 1))
    # keep_ratio=False: exactly the (h, w) target
    out = RandomRescale(scale=(20, 70), ratio_range=(1.0, 1.0),
                        keep_ratio=False)(_sample(30, 50))
    assert out['img'].shape == (20, 70, 3) and out['img_shape'] == (20, 70)
    assert out['gt_seg_map'].shape == (20, 70)
    assert out['scale_factor'] == (70 / 50, 20 / 30)
    assert set(np.unique(out['gt_seg_map'])) <= {0, 1, 2, 3}
    assert rescale_size((30, 50), (60, 200)) == ((60, 100), 2.0)


def test_rescale_ratio_range_and_reproducible():
    t = TRANSFORMS.build(dict(type='RandomRescale', scale=100,
                              ratio_range=(0.5, 1.5)))
    np.random.seed(0)
    sides = [t(_sample(40, 40))['img_shape'][0] for _ in range(30)]
    assert min(sides) >= 50 and max(sides) <= 150
    assert len(set(sides)) > 10
    np.random.seed(0)
    again = [t(_sample(40, 40))['img_shape'][0] for _ in range(30)]
    assert sides == again


def test_rescale_int64_mask_and_bad_args():
    seg = np.array([[0, 300], [2, 1]], np.int64)
    out = RandomRescale(scale=(4, 4), ratio_range=(1.0, 1.0))(
        dict(img=np.zeros((2, 2, 3), np.uint8), gt_seg_map=seg))
    np.testing.assert_array_equal(out['gt_seg_map'],
                                  seg.repeat(2, 0).repeat(2, 1))
    np.testing.assert_array_equal(
        resize_nearest(seg, (4, 4)),
        cv2.resize(seg.astype(np.int32), (4, 4),
                   interpolation=cv2.INTER_NEAREST))
    with pytest.raises(ValueError, match='ratio_range'):
        RandomRescale(scale=10, ratio_range=(2.0, 1.0))
    with pytest.raises(ValueError, match='scale'):
        RandomRescale(scale=(0, 10))


# ------------------------------------------------------------------ crop
def test_crop_keeps_image_and_mask_aligned():
    t = RandomCropCatRatio(crop_size=(16, 24))
    np.random.seed(1)
    for _ in range(5):
        out = t(_coords(40, 60))
        y1, y2, x1, x2 = out['crop_bbox']
        assert (y2 - y1, x2 - x1) == (16, 24)
        assert out['img'].shape == (16, 24, 3)
        assert out['img_shape'] == (16, 24)
        assert out['pad_border'] == (0, 0, 0, 0)
        np.testing.assert_array_equal(out['img'][:, 0, 0],
                                      np.arange(y1, y2))
        np.testing.assert_array_equal(out['img'][0, :, 1],
                                      np.arange(x1, x2))
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      out['img'][..., 0] // 5 + 1)


def test_crop_pads_small_images():
    out = RandomCropCatRatio(crop_size=32)(_coords(20, 30))
    assert out['img'].shape == (32, 32, 3)
    assert out['gt_seg_map'].shape == (32, 32)
    assert out['crop_bbox'] == (0, 20, 0, 30)
    assert out['img_shape'] == (20, 30) and out['pad_shape'] == (32, 32)
    assert out['pad_border'] == (0, 12, 0, 2)
    assert (out['img'][20:] == 0).all() and (out['img'][:, 30:] == 0).all()
    assert (out['gt_seg_map'][20:] == 255).all()
    assert (out['gt_seg_map'][:, 30:] == 255).all()
    assert (out['gt_seg_map'][:20, :30] != 255).all()
    # padding of the mask is the ignore index
    out = RandomCropCatRatio(crop_size=(24, 30), ignore_index=99)(
        _coords(20, 30))
    assert (out['gt_seg_map'][20:] == 99).all()


def test_cat_max_ratio_retries_then_keeps_last(monkeypatch):
    seg = np.zeros((10, 10), np.uint8)
    seg[:, 5:] = 1          # right half class 1
    seg[:2, :5] = 255       # ignored band
    results = dict(img=np.zeros((10, 10, 3), np.uint8), gt_seg_map=seg)
    t = RandomCropCatRatio(crop_size=(4, 4), cat_max_ratio=0.75)
    # all class 0; all class 1; 0 + ignore only; balanced (8 vs 8 pixels)
    boxes = [(4, 8, 0, 4), (4, 8, 6, 10), (0, 4, 0, 4), (4, 8, 3, 7),
             (0, 4, 6, 10)]
    drawn = iter(boxes)
    monkeypatch.setattr(t, '_random_bbox', lambda h, w: next(drawn))
    assert t.crop_bbox(results) == (4, 8, 3, 7)
    # the ignored pixels do not count: 0 x 4 + 1 x 4 + 255 x 8 is balanced
    seg2 = seg.copy()
    seg2[0:2, 3:7] = 255
    drawn = iter([(0, 4, 3, 7)])
    assert t.crop_bbox(dict(results, gt_seg_map=seg2)) == (0, 4, 3, 7)
    # never balanced: max_tries redraws, then the last one is kept
    t = RandomCropCatRatio(crop_size=(4, 4), cat_max_ratio=0.75,
                           max_tries=3)
    calls = []

    def always_left(h, w):
        calls.append(1)
        return (4, 8, 0, 4)

    monkeypatch.setattr(t, '_random_bbox', always_left)
    assert t.crop_bbox(results) == (4, 8, 0, 4)
    assert len(calls) == 4  # the first draw and 3 redraws, as mmseg


def test_cat_max_ratio_statistics_and_reproducible():
    # class 1 in the right 30 columns: about 1 in 3 random 40x40 crops
    # holds between 25% and 75% of it
    seg = np.zeros((100, 100), np.uint8)
    seg[:, 70:] = 1

    def share(out):
        _, cnt = np.unique(out['gt_seg_map'], return_counts=True)
        return cnt.max() / cnt.sum()

    def run(ratio):
        np.random.seed(0)
        t = RandomCropCatRatio(crop_size=40, cat_max_ratio=ratio)
        return [t(dict(img=np.zeros((100, 100, 3), np.uint8),
                       gt_seg_map=seg.copy())) for _ in range(40)]

    plain = [share(o) for o in run(1.0)]
    limited = [share(o) for o in run(0.75)]
    assert sum(s < 0.75 for s in plain) <= 20  # seed 0: 12 of 40
    assert sum(s < 0.75 for s in limited) >= 37  # seed 0: 40 of 40
    assert [o['crop_bbox'] for o in run(0.75)] == [
        o['crop_bbox'] for o in run(0.75)]


def test_crop_registry_and_bad_args():
    t = TRANSFORMS.build(dict(type='RandomCropCatRatio', crop_size=(8, 8),
                              cat_max_ratio=0.5))
    assert isinstance(t, RandomCropCatRatio) and 'cat_max_ratio=0.5' in repr(t)
    out = t(dict(img=np.zeros((8, 8, 3), np.uint8)))  # no mask: fine
    assert out['img'].shape == (8, 8, 3)
    with pytest.raises(ValueError, match='cat_max_ratio'):
        RandomCropCatRatio(crop_size=8, cat_max_ratio=0)
    with pytest.raises(ValueError, match='max_tries'):
        RandomCropCatRatio(crop_size=8, max_tries=0)
    with pytest.raises(ValueError, match='crop_size'):
        RandomCropCatRatio(crop_size=(8, 8, 8))


# ------------------------------------------------------- albumentations
def _rotate_cfg(**kw):
    return dict(type='Rotate', limit=(45, 45),
                border_mode=cv2.BORDER_CONSTANT, p=1.0, **kw)


def test_albumentations_rotate_fills_mask_with_ignore():
    import albumentations as A
    params = inspect.signature(A.Rotate.__init__).parameters
    assert 'fill' in params and 'fill_mask' in params, A.__version__
    img = np.full((40, 40, 3), 100, np.uint8)
    mask = np.ones((40, 40), np.uint8)
    out = Albumentations(transforms=[_rotate_cfg(fill=0, fill_mask=255)],
                         seed=0)(dict(img=img.copy(), gt_seg_map=mask.copy()))
    seg, rot = out['gt_seg_map'], out['img']
    assert seg.shape == (40, 40) and rot.shape == (40, 40, 3)
    assert set(np.unique(seg)) == {1, 255}
    assert seg[0, 0] == 255 and seg[20, 20] == 1
    assert (rot[0, 0] == 0).all() and (rot[20, 20] == 100).all()
    # the rotated-in corners: image 0 exactly where the mask is 255
    assert ((rot[..., 0] == 0) == (seg == 255)).mean() > 0.97
    # without fill_mask the corners become class 0: the pitfall documented
    out = Albumentations(transforms=[_rotate_cfg(fill=0)], seed=0)(
        dict(img=img.copy(), gt_seg_map=mask.copy()))
    assert out['gt_seg_map'][0, 0] == 0


def _paired_pipeline():
    return [
        dict(type='LoadImage'),
        dict(type='LoadSegAnnotation'),
        dict(type='RandomRescale', scale=(48, 48), ratio_range=(0.5, 2.0)),
        dict(type='RandomCropCatRatio', crop_size=(32, 32),
             cat_max_ratio=0.75),
        dict(type='Albumentations', transforms=[
            dict(type='HorizontalFlip', p=0.5),
            dict(type='Rotate', limit=15, border_mode=cv2.BORDER_CONSTANT,
                 fill=0, fill_mask=255, p=0.5),
            dict(type='ColorJitter', brightness=0.2, contrast=0.2,
                 saturation=0.2, hue=0.05, p=0.5),
        ]),
        dict(type='PackSegInputs'),
    ]


def test_full_paired_pipeline_on_generated_dataset(tmp_path):
    root = write_seg_shapes_dataset(str(tmp_path / 'shapes'), num_train=4,
                                    num_val=0, size=48, seed=0)

    def run():
        np.random.seed(123)
        ds = SegFolderDataset(data_root=root, classes=SEG_CLASSES,
                              palette=SEG_PALETTE,
                              pipeline=_paired_pipeline())
        return [ds[i] for i in range(len(ds))] + [ds[0]]

    first, second = run(), run()
    for a, b in zip(first, second):
        assert a['inputs'].shape == (3, 32, 32)
        seg = a['data_samples'].gt_sem_seg.data
        assert seg.shape == (1, 32, 32)
        assert set(seg.unique().tolist()) <= {0, 1, 2, 3, 255}
        assert a['data_samples'].metainfo['img_shape'][0] <= 32
        # same global seed, same samples
        assert torch.equal(a['inputs'], b['inputs'])
        assert torch.equal(seg, b['data_samples'].gt_sem_seg.data)
    # and the random transforms did change something between two epochs
    assert not torch.equal(first[0]['inputs'], first[-1]['inputs'])
