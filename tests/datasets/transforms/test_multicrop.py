"""DINOMultiCrop and PackMultiCropInputs."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from dinov3_mm.datasets.transforms import multicrop
from dinov3_mm.datasets.transforms.formatting import PackMultiCropInputs
from dinov3_mm.datasets.transforms.multicrop import (
    DINOV3_EFFECTIVE_BLUR_PROBS, DINOMultiCrop, random_resized_crop_box)
from dinov3_mm.datasets.transforms.photometric import (
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation,
    gaussian_blur, solarize)
from dinov3_mm.registry import TRANSFORMS
from dinov3_mm.structures.data_sample import DataSample

GEOMETRIC_ONLY = dict(photometric=False)
NO_JITTER = dict(color_jitter_prob=0.0, grayscale_prob=0.0,
                 blur_probs=(0.0, 0.0, 0.0), solarize_prob=0.0)


def _image(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gradient(h=200, w=300):
    """R encodes x, G encodes y, B constant."""
    xx, yy = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    return np.stack([xx, yy, np.full_like(xx, 100)], -1).round().astype(
        np.uint8)


def _run(transform, img, seed=0, **extra):
    np.random.seed(seed)
    return transform(dict(img=img.copy(), **extra))


@pytest.mark.parametrize('g,loc,n', [(224, 96, 8), (64, 32, 2), (48, 48, 1),
                                     (32, 16, 0)])
def test_shapes_and_dtypes(g, loc, n):
    t = TRANSFORMS.build(dict(type='DINOMultiCrop', global_crops_size=g,
                              local_crops_size=loc, local_crops_number=n))
    out = _run(t, _image())
    assert len(out['global_crops']) == 2 and len(out['local_crops']) == n
    for crop in out['global_crops']:
        assert crop.shape == (g, g, 3) and crop.dtype == np.uint8
    for crop in out['local_crops']:
        assert crop.shape == (loc, loc, 3) and crop.dtype == np.uint8
    packed = PackMultiCropInputs()(dict(out, img_path='x.png'))
    inputs = packed['inputs']
    assert inputs['global_crops'].shape == (2, 3, g, g)
    assert inputs['local_crops'].shape == (n, 3, loc, loc)
    assert inputs['global_crops'].dtype == torch.uint8
    assert inputs['local_crops'].dtype == torch.uint8
    assert packed['data_samples'].img_path == 'x.png'
    # channel-first packing of the same pixels
    np.testing.assert_array_equal(
        inputs['global_crops'][1].permute(1, 2, 0).numpy(),
        out['global_crops'][1])


def test_reproducible_under_numpy_seed():
    t = DINOMultiCrop(global_crops_size=48, local_crops_size=24,
                      local_crops_number=4)
    img = _image()
    a, b, c = _run(t, img, 3), _run(t, img, 3), _run(t, img, 4)
    for key in ('global_crops', 'local_crops'):
        for x, y in zip(a[key], b[key]):
            np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y)
               for x, y in zip(a['local_crops'], c['local_crops']))


def test_crop_box_like_torchvision():
    rng = np.random.RandomState(0)
    ratios, fractions = [], []
    for _ in range(300):
        top, left, h, w = random_resized_crop_box(200, 300, (0.32, 1.0),
                                                  rng=rng)
        assert 0 <= top and top + h <= 200 and 0 <= left and left + w <= 300
        fractions.append(h * w / (200 * 300))
        ratios.append(w / h)
    # area fraction in scale and ratio in 3/4..4/3, up to integer rounding
    assert 0.31 <= min(fractions) and max(fractions) <= 1.0
    assert 3 / 4 - 0.02 <= min(ratios) and max(ratios) <= 4 / 3 + 0.02
    assert max(fractions) - min(fractions) > 0.4  # the whole range is used
    # numpy Generators work too
    box = random_resized_crop_box(50, 50, (0.5, 0.5),
                                  rng=np.random.default_rng(0))
    assert abs(box[2] * box[3] / 2500 - 0.5) < 0.05


def test_crop_box_fallback_is_centred():
    # a whole-image crop of a strip cannot have a ratio in 3/4..4/3
    assert random_resized_crop_box(10, 100, (1.0, 1.0)) == (0, 43, 10, 13)
    assert random_resized_crop_box(100, 10, (1.0, 1.0)) == (43, 0, 13, 10)


def test_crops_come_from_the_sampled_box():
    img = _gradient()
    t = DINOMultiCrop(global_crops_size=64, local_crops_size=32,
                      local_crops_number=1, flip_prob=0.0, **GEOMETRIC_ONLY)
    out = _run(t, img, seed=11)
    # replay the draws: box, flip coin, box, flip coin, ... (geometry first)
    np.random.seed(11)
    pil = Image.fromarray(img)
    for crop, size, scale in [(out['global_crops'][0], 64, (0.32, 1.0)),
                              (out['global_crops'][1], 64, (0.32, 1.0)),
                              (out['local_crops'][0], 32, (0.05, 0.32))]:
        top, left, h, w = random_resized_crop_box(200, 300, scale)
        np.random.random()
        assert scale[0] - 0.01 <= h * w / (200 * 300) <= scale[1]
        expected = np.asarray(pil.resize((size, size), Image.BICUBIC,
                                         box=(left, top, left + w, top + h)))
        np.testing.assert_array_equal(crop, expected)
        # the gradient says where the crop lies (R ~ x, G ~ y)
        x_mid = (left + w / 2) / 299 * 255
        y_mid = (top + h / 2) / 199 * 255
        assert abs(float(crop[..., 0].mean()) - x_mid) < 3
        assert abs(float(crop[..., 1].mean()) - y_mid) < 3


def test_flip_mirrors_the_same_crop():
    img = _image()
    kept = _run(DINOMultiCrop(64, 32, local_crops_number=2, flip_prob=0.0,
                              **GEOMETRIC_ONLY), img, 5)
    flipped = _run(DINOMultiCrop(64, 32, local_crops_number=2, flip_prob=1.0,
                                 **GEOMETRIC_ONLY), img, 5)
    for key in ('global_crops', 'local_crops'):
        for a, b in zip(kept[key], flipped[key]):
            np.testing.assert_array_equal(a[:, ::-1], b)


def test_solarize_on_second_global_crop():
    img = np.clip(_image() // 2 + 128, 0, 255).astype(np.uint8)  # bright
    plain = _run(DINOMultiCrop(64, 32, local_crops_number=1, **NO_JITTER),
                 img, 2)
    cfg = dict(NO_JITTER, solarize_prob=1.0)
    solar = _run(DINOMultiCrop(64, 32, local_crops_number=1, **cfg), img, 2)
    np.testing.assert_array_equal(solar['global_crops'][0],
                                  plain['global_crops'][0])
    np.testing.assert_array_equal(solar['global_crops'][1],
                                  solarize(plain['global_crops'][1]))
    assert solar['global_crops'][1].max() <= 127
    assert plain['global_crops'][1].max() > 127
    # photometric=False turns it off
    off = _run(DINOMultiCrop(64, 32, local_crops_number=1, photometric=False,
                             solarize_prob=1.0), img, 2)
    np.testing.assert_array_equal(off['global_crops'][1],
                                  plain['global_crops'][1])


def test_grayscale_gives_equal_channels():
    t = DINOMultiCrop(64, 32, local_crops_number=3, grayscale_prob=1.0)
    out = _run(t, _image(), 1)
    for crop in out['global_crops'] + out['local_crops']:
        assert np.array_equal(crop[..., 0], crop[..., 1])
        assert np.array_equal(crop[..., 1], crop[..., 2])


def test_blur_probabilities():
    img = _image()
    sharp = _run(DINOMultiCrop(64, 32, local_crops_number=2, **NO_JITTER),
                 img, 7)
    blurred = _run(DINOMultiCrop(64, 32, local_crops_number=2,
                                 **dict(NO_JITTER, blur_probs=(1.0, 0, 0))),
                   img, 7)
    assert blurred['global_crops'][0].std() < sharp['global_crops'][0].std()
    np.testing.assert_array_equal(blurred['global_crops'][1],
                                  sharp['global_crops'][1])
    assert DINOV3_EFFECTIVE_BLUR_PROBS == (0.0, 0.9, 0.5)


def test_photometric_primitives():
    img = _image(20, 24)
    np.testing.assert_array_equal(adjust_brightness(img, 1.0), img)
    assert adjust_brightness(img, 0.0).max() == 0
    np.testing.assert_array_equal(adjust_contrast(img, 1.0), img)
    np.testing.assert_array_equal(adjust_saturation(img, 1.0), img)
    gray = adjust_saturation(img, 0.0)
    assert np.array_equal(gray[..., 0], gray[..., 2])
    np.testing.assert_array_equal(adjust_hue(img, 0.0), img)
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    # a third of a turn: red -> green
    np.testing.assert_array_equal(adjust_hue(red, 1 / 3)[0, 0], [0, 255, 0])
    flat = np.full((16, 16, 3), 77, np.uint8)
    np.testing.assert_array_equal(gaussian_blur(flat, 1.5), flat)


@pytest.mark.parametrize('kwargs,match', [
    (dict(global_crops_size=0), 'global_crops_size'),
    (dict(local_crops_size=-1), 'local_crops_size'),
    (dict(global_crops_size=64, local_crops_size=96), 'larger than'),
    (dict(global_crops_scale=(0.0, 1.0)), 'global_crops_scale'),
    (dict(local_crops_scale=(0.5, 1.2)), 'local_crops_scale'),
    (dict(local_crops_scale=(0.5, 0.2)), 'local_crops_scale'),
    (dict(local_crops_number=-1), 'local_crops_number'),
    (dict(local_crops_number=1.5), 'local_crops_number'),
    (dict(flip_prob=1.5), 'flip_prob'),
    (dict(color_jitter=(0.4, 0.4, 0.2)), 'color_jitter'),
    (dict(color_jitter=(0.4, 0.4, 0.2, 0.7)), 'color_jitter'),
    (dict(blur_probs=(1.0, 0.1)), 'blur_probs'),
    (dict(blur_sigma=(0.0, 2.0)), 'blur_sigma'),
    (dict(blur_kernel_size=8), 'odd'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DINOMultiCrop(**kwargs)


def test_small_images_are_upsampled_with_one_warning(monkeypatch):
    logged = []
    monkeypatch.setattr(multicrop, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    t = DINOMultiCrop(local_crops_number=2)
    out = _run(t, _image(20, 30), img_path='tiny.png')
    assert out['global_crops'][0].shape == (224, 224, 3)
    assert out['local_crops'][0].shape == (96, 96, 3)
    _run(t, _image(20, 30), img_path='tiny2.png')
    assert len(logged) == 1 and 'tiny.png' in logged[0]
    _run(DINOMultiCrop(64, 32, local_crops_number=0), _image(20, 30))
    assert len(logged) == 1  # 20 >= 64 / 4: no warning


def test_input_checks():
    t = DINOMultiCrop(32, 16, local_crops_number=1)
    with pytest.raises(TypeError, match='a.png'):
        t(dict(img=np.zeros((8, 8, 3), np.float32), img_path='a.png'))
    with pytest.raises(ValueError, match=r'\(8, 8, 4\)'):
        t(dict(img=np.zeros((8, 8, 4), np.uint8)))
    out = t(dict(img=np.zeros((40, 40), np.uint8)))  # gray is replicated
    assert out['global_crops'][0].shape == (32, 32, 3)


def test_pack_without_local_crops_and_errors():
    t = DINOMultiCrop(32, 16, local_crops_number=0)
    out = t(dict(img=_image(), img_path='a.png', ori_shape=(120, 160),
                 img_shape=(120, 160)))
    packed = PackMultiCropInputs()(out)
    assert packed['inputs']['local_crops'].shape == (0, 3, 16, 16)
    assert packed['inputs']['local_crops'].dtype == torch.uint8
    sample = packed['data_samples']
    assert isinstance(sample, DataSample)
    assert set(sample.metainfo_keys()) == {'img_path', 'ori_shape'}
    custom = PackMultiCropInputs(meta_keys=('img_shape', ))(out)
    assert set(custom['data_samples'].metainfo_keys()) == {'img_shape'}
    with pytest.raises(KeyError, match='DINOMultiCrop'):
        PackMultiCropInputs()(dict(img=_image(), img_path='a.png'))


def test_registered_and_repr():
    t = TRANSFORMS.build(dict(type='DINOMultiCrop'))
    assert 'blur_probs=(1.0, 0.1, 0.5)' in repr(t)
    assert t.global_crops_scale == (0.32, 1.0)
    assert t.local_crops_scale == (0.05, 0.32)
    assert math.isclose(t.color_jitter_prob, 0.8)
    assert isinstance(TRANSFORMS.build(dict(type='PackMultiCropInputs')),
                      PackMultiCropInputs)
