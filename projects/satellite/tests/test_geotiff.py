"""GeoTIFF reading and writing: layouts, georeferencing round trip, errors."""
import numpy as np
import pytest
import tifffile

from dinov3_mm_satellite.georef import (GEO_TAGS, GDAL_NODATA,
                                        GEO_KEY_DIRECTORY, MODEL_PIXEL_SCALE,
                                        MODEL_TIEPOINT, MODEL_TRANSFORMATION,
                                        GeoReference, GeoReferenceError,
                                        parse_geokeys)
from dinov3_mm_satellite.geotiff import (GeoTIFFError, RasterReader,
                                         check_georef, create_mask_memmap,
                                         geotiff_tags, read_geotiff,
                                         read_info, read_mask, write_geotiff,
                                         write_mask_geotiff)

UTM33 = (500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0)


def _utm_ref(**kwargs) -> GeoReference:
    return GeoReference.from_geotransform(
        UTM33, 32633, citation='WGS 84 / UTM zone 33N', **kwargs)


def _image(h=20, w=30, b=5, seed=0):
    return np.random.default_rng(seed).integers(0, 4000, (h, w, b)).astype(
        np.uint16)


def _raw_geotiff(path, data, extratags, **kwargs):
    """Write with tifffile directly, as a third-party tool would."""
    tifffile.imwrite(str(path), data, photometric='minisblack',
                     extratags=extratags, **kwargs)


def test_georef_round_trip_north_up(tmp_path):
    ref = _utm_ref(nodata=0)
    path = write_geotiff(str(tmp_path / 'a.tif'), _image(), ref,
                         band_names=['B2', 'B3', 'B4', 'B8', 'B11'])
    data, info = read_geotiff(path)
    assert info.georef.geotransform == UTM33
    assert info.georef.epsg == 32633 and info.georef.crs == 'EPSG:32633'
    assert info.georef.geokeys[1026] == 'WGS 84 / UTM zone 33N'
    assert info.georef.nodata == 0.0
    assert info.band_names == ('B2', 'B3', 'B4', 'B8', 'B11')
    assert np.array_equal(data, _image())
    tags = geotiff_tags(path, GEO_TAGS + (GDAL_NODATA, ))
    assert tags[MODEL_PIXEL_SCALE] == (10.0, 10.0, 0.0)
    assert tags[MODEL_TIEPOINT] == (0.0, 0.0, 0.0, 500000.0, 5000000.0, 0.0)
    assert tags[GDAL_NODATA] == '0'
    # world coordinates of a pixel corner
    assert info.georef.pixel_to_world(2, 3) == (500030.0, 4999980.0)


def test_reads_tags_written_by_another_tool(tmp_path):
    """Geographic CRS key, double params and a transformation matrix."""
    keys = [1, 1, 0, 3, 1024, 0, 1, 2, 2048, 0, 1, 4326,
            2057, 34736, 1, 0]  # GeogSemiMajorAxis in the doubles
    matrix = (0.5, 0.1, 0, 10.0, 0.2, -0.5, 0, 50.0, 0, 0, 0, 0, 0, 0, 0, 1)
    path = tmp_path / 'geo.tif'
    _raw_geotiff(path, _image(b=3), [
        (MODEL_TRANSFORMATION, 'd', 16, matrix, True),
        (GEO_KEY_DIRECTORY, 'H', len(keys), keys, True),
        (34736, 'd', 1, (6378137.0, ), True),
    ])
    ref = read_info(str(path)).georef
    assert ref.epsg == 4326
    assert ref.geotransform == (10.0, 0.5, 0.1, 50.0, 0.2, -0.5)
    assert ref.geokeys[2057] == 6378137.0
    assert ref.pixel_to_world(2, 4) == pytest.approx((12.2, 49.8))
    # a window moves only the translation
    win = ref.window(2, 4)
    assert win.geotransform == pytest.approx((12.2, 0.5, 0.1, 49.8, 0.2,
                                              -0.5))
    assert win.pixel_to_world(0, 0) == pytest.approx(ref.pixel_to_world(2, 4))


@pytest.mark.parametrize('layout', ['hwb', 'bhw_planar', 'page_per_band'])
def test_band_layouts_read_as_hwb(tmp_path, layout):
    data = _image(b=4)
    path = tmp_path / f'{layout}.tif'
    if layout == 'hwb':
        _raw_geotiff(path, data, [], planarconfig='contig')
    elif layout == 'bhw_planar':
        _raw_geotiff(path, data.transpose(2, 0, 1), [],
                     planarconfig='separate')
    else:
        _raw_geotiff(path, data.transpose(2, 0, 1), [])
    read, info = read_geotiff(str(path))
    assert info.shape == (20, 30, 4)
    assert np.array_equal(read, data)
    with RasterReader(str(path)) as reader:
        assert np.array_equal(reader.read(3, 9, 5, 17), data[3:9, 5:17])
        assert reader.memory_mapped


def test_compressed_scene_is_read_whole(tmp_path):
    path = write_geotiff(str(tmp_path / 'z.tif'), _image(), _utm_ref(),
                         compression='zlib')
    with RasterReader(path) as reader:
        assert np.array_equal(reader.read(0, 4, 0, 4), _image()[:4, :4])
        assert not reader.memory_mapped


def test_window_georef_of_tiepoint_file():
    ref = _utm_ref()
    win = ref.window(5, 7)
    assert win.geotransform == (500070.0, 10.0, 0.0, 4999950.0, 0.0, -10.0)
    assert win.epsg == ref.epsg
    assert win.tags[GEO_KEY_DIRECTORY] == ref.tags[GEO_KEY_DIRECTORY]


def test_mask_keeps_scene_tags(tmp_path):
    scene = write_geotiff(str(tmp_path / 's.tif'), _image(), _utm_ref())
    info = read_info(scene)
    mask = np.random.default_rng(0).integers(0, 4, (20, 30)).astype(np.uint8)
    out = write_mask_geotiff(str(tmp_path / 'm.tif'), mask, info.georef,
                             expected_shape=(20, 30), scene=scene)
    assert geotiff_tags(out, GEO_TAGS) == geotiff_tags(scene, GEO_TAGS)
    assert np.array_equal(read_mask(out), mask)
    assert read_info(out).georef.same_grid(info.georef)


def test_memmap_mask_keeps_scene_tags(tmp_path):
    scene = write_geotiff(str(tmp_path / 's.tif'), _image(), _utm_ref())
    ref = read_info(scene).georef
    mm = create_mask_memmap(str(tmp_path / 'm.tif'), (20, 30), np.uint8, ref)
    mm[5:] = 3
    mm.flush()
    del mm
    assert geotiff_tags(str(tmp_path / 'm.tif'), GEO_TAGS) == geotiff_tags(
        scene, GEO_TAGS)
    assert read_mask(str(tmp_path / 'm.tif'))[5:].min() == 3


def test_no_georef_errors_name_the_file(tmp_path):
    plain = tmp_path / 'plain.tif'
    _raw_geotiff(plain, _image(), [])
    info = read_info(str(plain))
    assert info.georef is None
    with pytest.raises(GeoTIFFError, match='plain.tif has no georeferencing'):
        read_geotiff(str(plain), require_georef=True)
    with pytest.raises(GeoTIFFError, match='plain.tif has no georef'):
        check_georef(info, 'tiled inference')
    mask = np.zeros((20, 30), np.uint8)
    with pytest.raises(GeoTIFFError, match=r'scene .*plain.tif has no '
                       'georeferencing'):
        write_mask_geotiff(str(tmp_path / 'm.tif'), mask, None,
                           scene=str(plain))
    with pytest.raises(GeoTIFFError, match='has no georeferencing'):
        create_mask_memmap(str(tmp_path / 'm2.tif'), (20, 30), np.uint8,
                           None, scene=str(plain))
    # explicitly allowed: a plain TIFF
    out = write_mask_geotiff(str(tmp_path / 'm.tif'), mask, None,
                             require_georef=False, scene=str(plain))
    assert read_info(out).georef is None


def test_mask_size_mismatch_is_an_error(tmp_path):
    scene = write_geotiff(str(tmp_path / 's.tif'), _image(), _utm_ref())
    ref = read_info(scene).georef
    with pytest.raises(GeoTIFFError, match=r'Mask for .*s.tif is 20x31 '
                       r'\(HxW\) but the scene is 20x30'):
        write_mask_geotiff(str(tmp_path / 'm.tif'),
                           np.zeros((20, 31), np.uint8), ref,
                           expected_shape=(20, 30))
    with pytest.raises(GeoTIFFError, match='must be \\(H, W\\)'):
        write_mask_geotiff(str(tmp_path / 'm.tif'),
                           np.zeros((20, 30, 2), np.uint8), ref)


def test_multiband_mask_is_an_error(tmp_path):
    path = write_geotiff(str(tmp_path / 'm.tif'), _image(b=2), _utm_ref())
    with pytest.raises(GeoTIFFError, match='m.tif has 2 bands'):
        read_mask(path)


def test_bad_files_and_tags(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.tif'):
        read_info(str(tmp_path / 'missing.tif'))
    junk = tmp_path / 'junk.tif'
    junk.write_bytes(b'not a tiff')
    with pytest.raises(GeoTIFFError, match='junk.tif is not a readable'):
        read_info(str(junk))
    bad = tmp_path / 'bad.tif'
    _raw_geotiff(bad, _image(), [(MODEL_TRANSFORMATION, 'd', 4,
                                  (1.0, 0.0, 0.0, 1.0), True)])
    with pytest.raises(GeoTIFFError, match='bad.tif: ModelTransformationTag '
                       'has 4 values'):
        read_info(str(bad))
    with pytest.raises(GeoReferenceError, match='announces 2 keys'):
        parse_geokeys([1, 1, 0, 2, 1024, 0, 1, 1])
    four_d = tmp_path / 'cube.tif'
    tifffile.imwrite(str(four_d), np.zeros((2, 3, 8, 8), np.uint8),
                     photometric='minisblack')
    with pytest.raises(GeoTIFFError, match='cube.tif: expected a 2-D or '
                       '3-D raster'):
        read_info(str(four_d))


def test_mask_georef_drops_scene_nodata():
    ref = _utm_ref(nodata=0)
    assert ref.nodata == 0.0
    assert ref.with_nodata(None).nodata is None
    assert GDAL_NODATA not in ref.with_nodata(None).tags
    assert ref.with_nodata(255).tags[GDAL_NODATA] == '255'
    assert ref.with_nodata(None).same_grid(ref)
