"""Intensity transforms: CT windows, percentiles, MRI gamma, grey to RGB."""
import numpy as np
import pytest

from dinov3_mm.registry import TRANSFORMS
from dinov3_mm_medical.transforms import (WINDOW_PRESETS, CTWindow,
                                          GrayToRGB, PercentileNormalize,
                                          resolve_window)


def test_window_presets_table():
    assert WINDOW_PRESETS == {
        'brain': (40.0, 80.0),
        'subdural': (80.0, 200.0),
        'stroke': (40.0, 40.0),
        'lung': (-600.0, 1500.0),
        'mediastinum': (50.0, 350.0),
        'abdomen': (50.0, 400.0),
        'soft_tissue': (50.0, 400.0),
        'liver': (30.0, 150.0),
        'bone': (400.0, 1800.0),
    }
    assert resolve_window('Soft-Tissue') == (50.0, 400.0)


def test_ct_window_numbers():
    hu = np.array([[-100.0, 0.0, 20.0, 40.0, 80.0, 1000.0]], np.float32)
    brain = TRANSFORMS.build(dict(type='CTWindow', preset='brain'))
    out = brain(dict(img=hu))
    # [0, 80] HU -> 0..255: 20 HU = 63.75 -> 64, 40 HU = 127.5 -> 128
    np.testing.assert_array_equal(out['img'], [[0, 0, 64, 128, 255, 255]])
    assert out['img'].dtype == np.uint8 and out['ct_window'] == [(40, 80)]
    lung = CTWindow(preset='lung', out_dtype='float32')
    values = lung(dict(img=np.array([-1350.0, -600.0, 0.0, 150.0])))['img']
    np.testing.assert_allclose(values, [0.0, 0.5, 0.9, 1.0], atol=1e-6)
    custom = CTWindow(level=100, width=50)
    np.testing.assert_array_equal(
        custom(dict(img=np.array([75.0, 100.0, 125.0])))['img'],
        [0, 128, 255])


def test_ct_window_multi_channel():
    hu = np.full((2, 3), 60.0, np.float32)
    three = CTWindow(preset=['brain', 'subdural', 'bone'])
    out = three(dict(img=hu))['img']
    assert out.shape == (2, 3, 3)
    # brain: (60 - 0) / 80 = 0.75; subdural: (60 + 20) / 200 = 0.4;
    # bone: (60 + 500) / 1800 = 0.3111
    np.testing.assert_array_equal(out[0, 0], [191, 102, 79])
    with pytest.raises(ValueError, match='2.5D context'):
        three(dict(img=np.zeros((2, 3, 3), np.float32)))


def test_ct_window_errors():
    with pytest.raises(ValueError, match="Unknown CT window preset 'head'"):
        CTWindow(preset='head')
    with pytest.raises(ValueError, match='not both'):
        CTWindow(preset='brain', level=40, width=80)
    with pytest.raises(ValueError, match='width=0 must be > 0'):
        CTWindow(level=40, width=0)
    with pytest.raises(ValueError, match='both level and width'):
        CTWindow(level=40)


def test_percentile_normalize_volume_scope():
    volume = np.arange(101, dtype=np.float32).reshape(1, 1, 101)
    norm = TRANSFORMS.build(dict(type='PercentileNormalize', lower=10,
                                 upper=90, scope='volume'))
    img = np.array([[0.0, 10.0, 50.0, 90.0, 100.0]], np.float32)
    out = norm(dict(img=img, volume=volume, volume_key='v1'))
    # percentiles 10 and 90 of 0..100 are 10 and 90: 50 -> 127.5 -> 128
    assert out['intensity_range'] == (10.0, 90.0)
    np.testing.assert_array_equal(out['img'], [[0, 0, 128, 255, 255]])
    # the volume's percentiles are kept per volume_key
    again = norm(dict(img=img.copy(), volume=volume * 0, volume_key='v1'))
    assert again['intensity_range'] == (10.0, 90.0)
    other = norm(dict(img=img.copy(), volume=volume * 2, volume_key='v2'))
    assert other['intensity_range'] == (20.0, 180.0)
    with pytest.raises(KeyError, match='LoadVolumeSlice'):
        norm(dict(img=img))


def test_percentile_normalize_slice_scope_and_nonzero():
    img = np.array([[0.0, 0.0, 0.0, 0.0, 40.0, 60.0, 80.0]], np.float32)
    whole = PercentileNormalize(lower=0, upper=100, scope='slice',
                                out_dtype='float32')
    np.testing.assert_allclose(whole(dict(img=img.copy()))['img'],
                               [[0, 0, 0, 0, 0.5, 0.75, 1.0]])
    nonzero = PercentileNormalize(lower=0, upper=100, scope='slice',
                                  nonzero=True, out_dtype='float32')
    out = nonzero(dict(img=img.copy()))
    assert out['intensity_range'] == (40.0, 80.0)
    np.testing.assert_allclose(out['img'], [[0, 0, 0, 0, 0, 0.5, 1.0]])
    flat = whole(dict(img=np.full((2, 2), 7.0, np.float32)))
    np.testing.assert_array_equal(flat['img'], np.zeros((2, 2)))
    with pytest.raises(ValueError, match='lower < upper'):
        PercentileNormalize(lower=99.5, upper=0.5)
    with pytest.raises(ValueError, match="scope='image'"):
        PercentileNormalize(scope='image')


def test_fixed_mri_gamma_is_the_core_gamma():
    gamma = TRANSFORMS.build(dict(type='GammaCorrection', gamma=0.75,
                                  prob=1.0))
    img = np.array([[0, 64, 128, 255]], np.uint8)
    # 255 * (64 / 255) ** 0.75 = 90.4; 255 * (128 / 255) ** 0.75 = 151.8
    np.testing.assert_array_equal(gamma(dict(img=img))['img'],
                                  [[0, 90, 152, 255]])


def test_gray_to_rgb():
    to_rgb = TRANSFORMS.build(dict(type='GrayToRGB'))
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    out = to_rgb(dict(img=gray))['img']
    assert out.shape == (2, 3, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)
    three = np.zeros((2, 3, 3), np.uint8)
    assert to_rgb(dict(img=three))['img'].shape == (2, 3, 3)
    with pytest.raises(ValueError, match=r'5 channels \(2.5D with '
                       r'context=2\?\)'):
        to_rgb(dict(img=np.zeros((2, 3, 5), np.uint8)))
    single = GrayToRGB(num_channels=1)(dict(img=gray))['img']
    assert single.shape == (2, 3, 1)
