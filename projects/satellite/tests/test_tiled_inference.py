"""Tiled scene inference: numerical equivalence with whole-image and core
sliding-window inference, the written GeoTIFF and its tags, and errors."""
import os.path as osp

import numpy as np
import pytest
import tifffile
import torch
from mmengine.config import Config

from dinov3_mm.registry import MODELS, TRANSFORMS
from dinov3_mm_satellite.georef import (GDAL_NODATA, GEO_ASCII_PARAMS,
                                        GEO_KEY_DIRECTORY, GEO_TAGS,
                                        MODEL_PIXEL_SCALE, MODEL_TIEPOINT)
from dinov3_mm_satellite.geotiff import (GeoTIFFError, RasterReader,
                                         read_geotiff, read_info, read_mask,
                                         write_geotiff)
from dinov3_mm_satellite.tiled_inference import (TiledSegmenter,
                                                 blend_weights, infer_scene,
                                                 pixel_transforms_from_config,
                                                 window_starts)

CONFIG = 'configs/satellite/vits16_unet_multispectral.py'


@pytest.fixture(scope='module')
def model(repo_root, model_cfg):
    torch.manual_seed(0)
    net = MODELS.build(model_cfg(in_channels=6)).eval()
    net.cfg = Config.fromfile(str(repo_root / CONFIG))
    return net


@pytest.fixture(scope='module')
def scene(geo_set):
    return osp.join(geo_set['root'], 'scenes', 'scene.tif')


@pytest.fixture(scope='module')
def scene_input(model, scene):
    """The whole scene through the config's per-pixel transforms, (1, 6,
    H, W); the scene is 64 x 96."""
    raw, info = read_geotiff(scene)
    segmenter = TiledSegmenter(
        model, transforms=pixel_transforms_from_config(model.cfg),
        band_names=info.band_names)
    x = segmenter.prepare(raw, scene)[None]
    assert x.shape == (1, 6, 64, 96)
    return x


def _tiled_logits(model, scene, **kwargs):
    segmenter = TiledSegmenter(
        model, transforms=pixel_transforms_from_config(model.cfg), **kwargs)
    with RasterReader(scene) as reader:
        chunks = list(segmenter.iter_rows(reader))
    starts = [y for y, _ in chunks]
    assert starts == sorted(starts) and starts[0] == 0
    return np.concatenate([c for _, c in chunks], axis=1), chunks, segmenter


def test_window_starts_match_core_slide_layout():
    assert window_starts(96, 32, 32) == [0, 32, 64]
    assert window_starts(96, 32, 24) == [0, 24, 48, 64]
    assert window_starts(20, 32, 16) == [0]
    assert window_starts(32, 32, 8) == [0]
    with pytest.raises(ValueError):
        window_starts(10, 0, 1)


def test_blend_weights():
    assert np.all(blend_weights(4, 6, 'average') == 1)
    g = blend_weights(8, 8, 'gaussian')
    assert g[4, 4] > g[0, 0] > 0 and g.shape == (8, 8)
    with pytest.raises(ValueError, match='blend'):
        blend_weights(4, 4, 'max')


def test_one_window_equals_whole_image(model, scene, scene_input):
    logits, chunks, seg = _tiled_logits(model, scene, tile_size=128,
                                        overlap=0)
    with torch.no_grad():
        whole = model(scene_input, mode='tensor')[0].numpy()
    assert seg.num_windows == 1 and len(chunks) == 1
    np.testing.assert_allclose(logits, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('blend', ['average', 'gaussian'])
def test_exact_cover_equals_stitched_windows(model, scene, scene_input,
                                             blend):
    """Non-overlapping windows covering the scene exactly: every pixel has
    the logits of the model run on its window alone (blend weights cancel).
    """
    logits, _, seg = _tiled_logits(model, scene, tile_size=32, overlap=0,
                                   batch_size=2, blend=blend)
    expected = np.zeros_like(logits)
    with torch.no_grad():
        for y in (0, 32):
            for x in (0, 32, 64):
                window = scene_input[..., y:y + 32, x:x + 32]
                expected[:, y:y + 32, x:x + 32] = model(
                    window, mode='tensor')[0].numpy()
    assert seg.num_windows == 6
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_overlap_average_equals_core_slide_inference(model, scene,
                                                     scene_input):
    logits, chunks, seg = _tiled_logits(model, scene, tile_size=32,
                                        overlap=16, blend='average')
    model.test_cfg = dict(model.test_cfg, crop_size=(32, 32),
                          stride=(16, 16))
    with torch.no_grad():
        core = model.slide_inference(scene_input)[0].numpy()
    np.testing.assert_allclose(logits, core, rtol=1e-5, atol=1e-5)
    assert seg.num_windows == 3 * 5
    # rows were finished and handed out strip by strip, never the scene
    assert len(chunks) == 3
    assert max(c.shape[1] for _, c in chunks) <= 32


def test_infer_scene_writes_georeferenced_mask(model, scene, scene_input,
                                               tmp_path):
    out, conf = str(tmp_path / 'mask.tif'), str(tmp_path / 'conf.tif')
    result = infer_scene(model, scene, out, tile_size=32, overlap=16,
                         batch_size=3, blend='average', confidence_out=conf)
    assert result.shape == (64, 96) and result.num_classes == 4
    assert result.memory_mapped
    with tifffile.TiffFile(out) as tif:
        assert tif.series[0].shape == (64, 96)
        assert tif.series[0].dtype == np.uint8
        tags = {c: tif.pages[0].tags[c].value for c in GEO_TAGS
                if c in tif.pages[0].tags}
        assert GDAL_NODATA not in tif.pages[0].tags
    with tifffile.TiffFile(scene) as tif:
        scene_tags = {c: tif.pages[0].tags[c].value for c in GEO_TAGS
                      if c in tif.pages[0].tags}
    assert tags == scene_tags
    for code in (MODEL_PIXEL_SCALE, MODEL_TIEPOINT, GEO_KEY_DIRECTORY,
                 GEO_ASCII_PARAMS):
        assert code in tags
    mask_ref = read_info(out).georef
    assert mask_ref.epsg == 32633
    assert mask_ref.geotransform == read_info(scene).georef.geotransform
    # labels and confidence are those of the core sliding-window logits
    model.test_cfg = dict(model.test_cfg, crop_size=(32, 32),
                          stride=(16, 16))
    with torch.no_grad():
        probs = model.slide_inference(scene_input)[0].softmax(0)
    assert np.array_equal(read_mask(out), probs.argmax(0).numpy())
    np.testing.assert_allclose(read_mask(conf), probs.max(0).values.numpy(),
                               rtol=1e-5, atol=1e-6)
    assert read_info(conf).georef.same_grid(mask_ref)


def test_scene_without_georef(model, scene, tmp_path):
    raw, info = read_geotiff(scene)
    plain = write_geotiff(str(tmp_path / 'plain.tif'), raw,
                          band_names=info.band_names)
    out = str(tmp_path / 'mask.tif')
    with pytest.raises(GeoTIFFError, match='plain.tif has no '
                       'georeferencing'):
        infer_scene(model, plain, out, tile_size=64, overlap=0)
    assert not osp.exists(out)
    infer_scene(model, plain, out, tile_size=64, overlap=0,
                require_georef=False)
    assert read_info(out).georef is None
    assert read_mask(out).shape == (64, 96)


def test_band_count_errors(model, scene, tmp_path, model_cfg):
    raw, info = read_geotiff(scene)
    few = write_geotiff(str(tmp_path / 'four.tif'), raw[..., :4],
                        info.georef, band_names=info.band_names[:4])
    # the config names 6 bands
    with pytest.raises(ValueError, match=r'four.tif has 4 band\(s\) but 6 '
                       'band names'):
        infer_scene(model, few, str(tmp_path / 'm.tif'), tile_size=64,
                    overlap=0)
    with pytest.raises(ValueError, match="four.tif: no band named 'B11'"):
        infer_scene(model, few, str(tmp_path / 'm.tif'), tile_size=64,
                    overlap=0, band_names=info.band_names[:4])
    unnamed = write_geotiff(str(tmp_path / 'four_unnamed.tif'), raw[..., :4],
                            info.georef)
    bare = MODELS.build(model_cfg(in_channels=6)).eval()  # no config
    select = TRANSFORMS.build(dict(type='SelectBands',
                                   bands=(2, 1, 0, 3, 4, 5)))
    with pytest.raises(ValueError, match=r'four_unnamed.tif has 4 band\(s\) '
                       'but the band selection'):
        infer_scene(bare, unnamed, str(tmp_path / 'm.tif'), tile_size=64,
                    overlap=0, transforms=[select])
    five_band_model = MODELS.build(model_cfg(in_channels=5)).eval()
    with pytest.raises(GeoTIFFError, match=r'scene.tif gives 6 band\(s\) '
                       'after the band selection but the model expects '
                       'in_channels=5'):
        infer_scene(five_band_model, scene, str(tmp_path / 'm.tif'),
                    tile_size=64, overlap=0, transforms=[])


def test_nodata_label(model, scene, tmp_path):
    raw, info = read_geotiff(scene)
    raw = raw.copy()
    raw[:10, :20] = 0
    nodata_scene = write_geotiff(str(tmp_path / 'nd.tif'), raw,
                                 info.georef.with_nodata(0),
                                 band_names=info.band_names)
    out = str(tmp_path / 'mask.tif')
    infer_scene(model, nodata_scene, out, tile_size=64, overlap=16,
                nodata_label=255)
    mask = read_mask(out)
    assert (mask[:10, :20] == 255).all()
    assert (mask[10:] < 4).all()
    assert read_info(out).georef.nodata == 255
    with pytest.raises(ValueError, match='overlap'):
        TiledSegmenter(model, tile_size=32, overlap=32)
