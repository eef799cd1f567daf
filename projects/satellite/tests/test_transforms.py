"""Multispectral transforms: loading, band selection, normalisation, packing,
augmentation, and their bad-input errors."""
import numpy as np
import pytest
import torch

from dinov3_mm.registry import TRANSFORMS
from dinov3_mm_satellite.bands import (band_statistics,
                                       compute_band_statistics,
                                       resolve_band_indices)
from dinov3_mm_satellite.georef import GeoReference
from dinov3_mm_satellite.geotiff import GeoTIFFError, write_geotiff

NAMES = ('B2', 'B3', 'B4', 'B8', 'B11')
REF = GeoReference.from_geotransform(
    (500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0), 32633)


@pytest.fixture
def tile(tmp_path):
    """A 5-band uint16 tile (band b holds 1000 * (b + 1) + noise) and its
    mask on the same grid."""
    rng = np.random.default_rng(0)
    img = (np.arange(1, 6) * 1000 + rng.integers(0, 100, (16, 24, 5))
           ).astype(np.uint16)
    mask = rng.integers(0, 3, (16, 24)).astype(np.uint8)
    img_path = write_geotiff(str(tmp_path / 'img.tif'), img, REF, NAMES)
    mask_path = write_geotiff(str(tmp_path / 'mask.tif'), mask, REF)
    return dict(img=img, mask=mask, img_path=img_path, mask_path=mask_path)


def _build(cfg):
    return TRANSFORMS.build(cfg)


def _load(tile, **kwargs):
    return _build(dict(type='LoadMultispectralGeoTIFF', **kwargs))(
        dict(img_path=tile['img_path']))


def test_load_multispectral(tile):
    results = _load(tile)
    assert results['img'].dtype == np.float32
    assert results['img'].shape == (16, 24, 5)
    assert np.array_equal(results['img'], tile['img'].astype(np.float32))
    assert results['band_names'] == NAMES
    assert results['ori_shape'] == (16, 24)
    assert results['georef'].epsg == 32633
    raw = _load(tile, to_float32=False)['img']
    assert raw.dtype == np.uint16


def test_load_band_count_errors(tile, tmp_path):
    with pytest.raises(GeoTIFFError, match=r'img.tif has 5 band\(s\), '
                       'expected 6'):
        _load(tile, num_bands=6)
    with pytest.raises(GeoTIFFError, match=r'img.tif has 5 band\(s\), fewer '
                       'than the 8'):
        _load(tile, min_bands=8)
    with pytest.raises(GeoTIFFError, match='but 2 band names'):
        _load(tile, band_names=('a', 'b'))
    plain = write_geotiff(str(tmp_path / 'plain.tif'), tile['img'])
    with pytest.raises(GeoTIFFError, match='plain.tif has no georeferencing'):
        _build(dict(type='LoadMultispectralGeoTIFF', require_georef=True))(
            dict(img_path=plain))


@pytest.mark.parametrize('bands,expected', [
    ((2, 1, 0), [2, 1, 0]),
    (('B4', 'B3', 'B2', 'B8'), [2, 1, 0, 3]),
    ((-1, 'B2'), [4, 0]),
])
def test_select_bands(tile, bands, expected):
    results = _build(dict(type='SelectBands', bands=bands))(_load(tile))
    assert np.array_equal(results['img'],
                          tile['img'][..., expected].astype(np.float32))
    assert results['band_names'] == tuple(NAMES[i] for i in expected)


def test_select_bands_errors(tile):
    loaded = _load(tile)
    with pytest.raises(ValueError, match=r'img.tif has 5 band\(s\) but the '
                       r'band selection .* asks for index 7'):
        _build(dict(type='SelectBands', bands=(0, 7)))(dict(loaded))
    with pytest.raises(ValueError, match="img.tif: no band named 'B12'"):
        _build(dict(type='SelectBands', bands=('B12', )))(dict(loaded))
    unnamed = dict(img=loaded['img'], img_path='x.tif', band_names=None)
    with pytest.raises(ValueError, match='x.tif: band .B4. selected by name'):
        _build(dict(type='SelectBands', bands=('B4', )))(unnamed)
    with pytest.raises(ValueError, match='non-empty'):
        _build(dict(type='SelectBands', bands=()))


def test_normalize_sat493m_preset_numbers():
    """(x * scale - mean) / std with the SAT-493M RGB constants and the
    extra-band statistics, checked against hand-computed values."""
    img = np.array([[[4300, 4110, 2960, 5000],
                     [6430, 5670, 4390, 2000]]], np.float32)  # (1, 2, 4)
    norm = _build(dict(type='NormalizeBands', preset='sat493m',
                       extra_mean=(0.3, ), extra_std=(0.1, ), scale=1e-4))
    out = norm(dict(img=img))['img']
    assert out.dtype == np.float32
    # pixel 0 is exactly the SAT-493M mean in RGB
    np.testing.assert_allclose(out[0, 0], [0.0, 0.0, 0.0, 2.0], atol=1e-5)
    # pixel 1 is mean + 1 std in RGB, 1 std below in the extra band
    np.testing.assert_allclose(out[0, 1], [1.0, 1.0, 1.0, -1.0], atol=1e-5)
    np.testing.assert_allclose(norm.mean, [0.430, 0.411, 0.296, 0.3])
    np.testing.assert_allclose(norm.std, [0.213, 0.156, 0.143, 0.1])


def test_normalize_rgb_positions_and_clip():
    mean, std = band_statistics(4, 'sat493m', extra_mean=(0.5, ),
                                extra_std=(0.2, ), rgb_indices=(2, 1, 0))
    np.testing.assert_allclose(mean, [0.296, 0.411, 0.430, 0.5])
    np.testing.assert_allclose(std, [0.143, 0.156, 0.213, 0.2])
    norm = _build(dict(type='NormalizeBands', mean=(0.5, 0.5),
                       std=(0.25, 0.5), scale=1 / 255, clip=(0.0, 1.0)))
    img = np.array([[[510.0, -10.0]]], np.float32)
    np.testing.assert_allclose(norm(dict(img=img))['img'][0, 0], [2.0, -1.0],
                               atol=1e-6)


def test_normalize_errors():
    norm = _build(dict(type='NormalizeBands', preset='sat493m',
                       extra_mean=(0.3, ), extra_std=(0.1, )))
    with pytest.raises(ValueError, match=r'scene.tif has 5 band\(s\) here '
                       'but NormalizeBands has statistics for 4'):
        norm(dict(img=np.zeros((2, 2, 5), np.float32),
                  img_path='scene.tif'))
    with pytest.raises(ValueError, match=r'give extra_mean and extra_std '
                       r'with 2 value\(s\)'):
        band_statistics(5, 'sat493m', extra_mean=(0.1, ), extra_std=(0.1, ))
    with pytest.raises(ValueError, match='Unknown normalisation preset'):
        band_statistics(3, 'landsat')
    with pytest.raises(ValueError, match='one value per band'):
        band_statistics(3, mean=(0.1, 0.2), std=(0.1, 0.2))
    with pytest.raises(ValueError, match='positive'):
        band_statistics(1, mean=(0.1, ), std=(0.0, ))


def test_compute_band_statistics(tile):
    stats = compute_band_statistics([tile['img_path']], bands=('B3', 'B2'),
                                    scale=1e-3)
    expected = tile['img'][..., [1, 0]].reshape(-1, 2) * 1e-3
    np.testing.assert_allclose(stats['mean'], expected.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats['std'], expected.std(0), atol=1e-6)


def test_load_annotation_and_mismatches(tile, tmp_path):
    load_ann = _build(dict(type='LoadGeoTIFFAnnotation'))
    results = load_ann(dict(_load(tile), seg_map_path=tile['mask_path'],
                            num_classes=3))
    assert np.array_equal(results['gt_seg_map'], tile['mask'])
    # a mask of another size
    small = write_geotiff(str(tmp_path / 'small.tif'), tile['mask'][:8], REF)
    with pytest.raises(ValueError, match=r'Mask .*small.tif is 8x24 \(HxW\) '
                       r'but image .*img.tif is 16x24'):
        load_ann(dict(_load(tile), seg_map_path=small))
    # a mask on another grid
    moved = write_geotiff(str(tmp_path / 'moved.tif'), tile['mask'],
                          REF.window(4, 0))
    with pytest.raises(GeoTIFFError, match='moved.tif .* is not on the grid '
                       'of image .*img.tif'):
        load_ann(dict(_load(tile), seg_map_path=moved))
    # values outside the classes
    with pytest.raises(ValueError, match='outside the 2 classes'):
        load_ann(dict(_load(tile), seg_map_path=tile['mask_path'],
                      num_classes=2))


def test_nodata_pixels_are_ignored_and_zeroed(tmp_path):
    img = np.full((4, 4, 3), 500, np.uint16)
    img[0, :2] = 0  # no-data in every band
    mask = np.ones((4, 4), np.uint8)
    ref = REF.with_nodata(0)
    img_path = write_geotiff(str(tmp_path / 'i.tif'), img, ref)
    mask_path = write_geotiff(str(tmp_path / 'm.tif'), mask, REF)
    results = _build(dict(type='LoadMultispectralGeoTIFF'))(
        dict(img_path=img_path, seg_map_path=mask_path))
    results = _build(dict(type='LoadGeoTIFFAnnotation'))(results)
    results = _build(dict(type='NormalizeBands', mean=(0.1, ) * 3,
                          std=(0.1, ) * 3, scale=1e-3))(results)
    assert (results['gt_seg_map'][0, :2] == 255).all()
    assert (results['gt_seg_map'][1:] == 1).all()
    assert (results['img'][0, :2] == 0).all()
    np.testing.assert_allclose(results['img'][1:], 4.0, atol=1e-5)


def test_pack_keeps_floats(tile):
    results = _build(dict(type='NormalizeBands', mean=(0.0, ) * 5,
                          std=(1000.0, ) * 5))(_load(tile))
    results['gt_seg_map'] = tile['mask']
    packed = _build(dict(type='PackMultispectralSegInputs'))(results)
    inputs = packed['inputs']
    assert inputs.dtype == torch.float32 and inputs.shape == (5, 16, 24)
    np.testing.assert_allclose(inputs.numpy(),
                               tile['img'].transpose(2, 0, 1) / 1000.0,
                               rtol=1e-6)
    sample = packed['data_samples']
    assert torch.equal(sample.gt_sem_seg.data[0],
                       torch.from_numpy(tile['mask'].astype(np.int64)))
    assert sample.metainfo['img_path'] == tile['img_path']


def test_flip_rot90_moves_mask_with_image():
    img = np.random.default_rng(0).random((6, 8, 4)).astype(np.float32)
    seg = (img[..., 0] > 0.5).astype(np.uint8)
    flip = _build(dict(type='RandomFlipRot90', flip_prob=1.0))
    np.random.seed(3)
    out = flip(dict(img=img.copy(), gt_seg_map=seg.copy()))
    assert out['img'].shape[2] == 4
    assert out['img'].shape[:2] in ((6, 8), (8, 6))
    assert out['img_shape'] == out['img'].shape[:2]
    assert np.array_equal(out['gt_seg_map'],
                          (out['img'][..., 0] > 0.5).astype(np.uint8))
    assert not np.array_equal(out['img'], img)


def test_spectral_jitter_per_band():
    jitter = _build(dict(type='SpectralJitter', gain_range=(2.0, 2.0),
                         offset_range=0.0, noise_std=0.0, prob=1.0))
    img = np.ones((3, 3, 7), np.float32)
    assert np.allclose(jitter(dict(img=img))['img'], 2.0)
    with pytest.raises(ValueError, match='gain_range'):
        _build(dict(type='SpectralJitter', gain_range=(1.2, 1.0)))


def test_resolve_band_indices_negative_and_empty():
    assert resolve_band_indices([-1, 0], 3) == [2, 0]
    with pytest.raises(ValueError, match='empty'):
        resolve_band_indices([], 3)


def test_pack_checks_model_channels(tile):
    results = _build(dict(type='SelectBands', bands=(0, 1, 2)))(_load(tile))
    pack = _build(dict(type='PackMultispectralSegInputs', num_channels=4))
    with pytest.raises(ValueError, match=r'img.tif has 3 band\(s\) after the '
                       'pipeline but the model takes in_channels=4'):
        pack(results)
    packed = _build(dict(type='PackMultispectralSegInputs', num_channels=3,
                         meta_keys=('img_path', )))(results)
    assert packed['inputs'].shape == (3, 16, 24)
    assert set(packed['data_samples'].metainfo) == {'img_path'}
