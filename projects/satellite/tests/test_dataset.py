"""GeoTIFF segmentation dataset, the generated set, and the core pipeline
(SegDataPreprocessor, DINOv3Segmentor, SegMetric) on its samples."""
import json
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from dinov3_mm.registry import DATASETS, METRICS, MODELS
from dinov3_mm_satellite.georef import GEO_TAGS
from dinov3_mm_satellite.geotiff import (GeoTIFFError, geotiff_tags,
                                         read_geotiff, read_info, read_mask,
                                         write_geotiff)
from dinov3_mm_satellite.synthetic import CLASSES, SIGNATURES

CONFIG = 'configs/satellite/vits16_unet_multispectral.py'


@pytest.fixture(scope='module')
def cfg(repo_root):
    return Config.fromfile(str(repo_root / CONFIG))


def _dataset(cfg, root, split='train', **overrides):
    loader = cfg[f'{split}_dataloader']
    ds_cfg = dict(loader.dataset.to_dict(), data_root=root, **overrides)
    return DATASETS.build(ds_cfg)


def test_generated_set_layout_and_georef(geo_set):
    root = geo_set['root']
    meta = json.load(open(osp.join(root, 'dataset.json')))
    assert meta['classes'] == list(CLASSES)
    assert meta['band_names'] == ['B2', 'B3', 'B4', 'B8', 'B11', 'B12']
    assert len(meta['band_stats']['mean']) == 6
    scene, scene_info = read_geotiff(osp.join(root, 'scenes', 'scene.tif'))
    assert scene_info.georef.epsg == 32633
    assert scene_info.georef.geotransform == (500000.0, 10.0, 0.0,
                                              5000000.0, 0.0, -10.0)
    scene_mask = read_mask(osp.join(root, 'scenes', 'scene_mask.tif'))
    assert set(np.unique(scene_mask)) <= set(range(len(CLASSES)))
    assert len(np.unique(scene_mask)) >= 3
    # every class has its signature (up to noise) in the scene
    for index, name in enumerate(CLASSES):
        pixels = scene[scene_mask == index] / 1e4
        if len(pixels):
            np.testing.assert_allclose(pixels.mean(0), SIGNATURES[name],
                                       atol=0.01)
    # tile 1 is the scene window right of tile 0, on the same grid
    cols = scene.shape[1] // 32
    tile, info = read_geotiff(osp.join(root, 'img_dir/train/tile_001.tif'))
    assert np.array_equal(tile, scene[:32, 32:64])
    assert info.georef.geotransform[0] == 500000.0 + 32 * 10.0
    assert info.georef.epsg == 32633
    mask_info = read_info(osp.join(root, 'ann_dir/train/tile_001.tif'))
    assert mask_info.georef.same_grid(info.georef)
    r, c = divmod(5, cols)  # 4 train + 2 val tiles: the last is index 5
    val_tile, _ = read_geotiff(osp.join(root, 'img_dir/val/tile_005.tif'))
    assert np.array_equal(val_tile,
                          scene[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32])


def test_train_samples_through_the_core_segmentation_stack(
        cfg, geo_set, model_cfg):
    dataset = _dataset(cfg, geo_set['root'])
    assert len(dataset) == 4
    assert dataset.metainfo['band_names'] == (
        'B2', 'B3', 'B4', 'B8', 'B11', 'B12')
    assert dataset.get_data_info(0)['band_names'][2] == 'B4'
    sample = dataset[0]
    assert sample['inputs'].dtype == torch.float32
    assert sample['inputs'].shape == (6, 128, 128)  # the config's crop
    gt = sample['data_samples'].gt_sem_seg.data
    assert gt.shape == (1, 128, 128)
    assert set(gt.unique().tolist()) <= {0, 1, 2, 3, 255}

    model = MODELS.build(model_cfg(in_channels=6))
    batch = pseudo_collate([dataset[i] for i in range(2)])
    data = model.data_preprocessor(batch, True)
    # the preprocessor pads only: values are NormalizeBands' output
    assert torch.equal(data['inputs'][0], batch['inputs'][0])
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_seg'])


def test_val_samples_are_normalised_tiles(cfg, geo_set, model_cfg):
    dataset = _dataset(cfg, geo_set['root'], split='val')
    sample = dataset[0]
    tile, _ = read_geotiff(sample['data_samples'].img_path)
    rgb = tile[..., [2, 1, 0]] * 1e-4  # B4, B3, B2
    expected = (np.clip(rgb, 0, 1) - [0.430, 0.411, 0.296]) / [
        0.213, 0.156, 0.143]
    np.testing.assert_allclose(sample['inputs'][:3].numpy(),
                               expected.transpose(2, 0, 1), rtol=1e-4,
                               atol=1e-4)
    model = MODELS.build(model_cfg(in_channels=6)).eval()
    batch = pseudo_collate([dataset[0], dataset[1]])
    with torch.no_grad():
        preds = model.test_step(batch)
    metric = METRICS.build(dict(type='SegMetric'))
    metric.dataset_meta = dataset.metainfo
    metric.process(batch, [p.to_dict() for p in preds])
    results = metric.compute_metrics(metric.results)
    assert 0 <= results['mIoU'] <= 100


def _copy_set(geo_set, tmp_path):
    root = tmp_path / 'set'
    shutil.copytree(geo_set['root'], root)
    return root


def test_dataset_errors_name_the_file(cfg, geo_set, tmp_path):
    root = _copy_set(geo_set, tmp_path)
    ref = read_info(str(root / 'img_dir/train/tile_000.tif')).georef
    # a mask of another size
    write_geotiff(str(root / 'ann_dir/train/tile_002.tif'),
                  np.zeros((16, 32), np.uint8), ref)
    with pytest.raises(GeoTIFFError, match=r'Mask .*tile_002.tif is 16x32 '
                       r'\(HxW\) but image .*tile_002.tif is 32x32'):
        _dataset(cfg, str(root))
    # check_files=False defers it to the pipeline, which names it too
    lazy = _dataset(cfg, str(root), check_files=False)
    with pytest.raises(ValueError, match='tile_002.tif is 16x32'):
        lazy[2]
    write_geotiff(str(root / 'ann_dir/train/tile_002.tif'),
                  np.zeros((32, 32), np.uint8), ref)
    # fewer bands than the config needs
    tile, _ = read_geotiff(str(root / 'img_dir/train/tile_003.tif'))
    write_geotiff(str(root / 'img_dir/train/tile_003.tif'), tile[..., :4],
                  ref)
    with pytest.raises(GeoTIFFError, match=r'tile_003.tif has 4 band\(s\); '
                       'the dataset needs at least 6'):
        _dataset(cfg, str(root))
    with pytest.raises(GeoTIFFError, match=r'tile_003.tif has 4 band\(s\) '
                       'but the dataset names 6'):
        _dataset(cfg, str(root), min_bands=None)
    # the pipeline's band selection fails on it, naming it
    lazy = _dataset(cfg, str(root), check_files=False)
    with pytest.raises(ValueError, match='tile_003.tif has 4 band'):
        lazy[3]
    write_geotiff(str(root / 'img_dir/train/tile_003.tif'), tile)  # no geo
    with pytest.raises(GeoTIFFError, match='tile_003.tif has no '
                       'georeferencing'):
        _dataset(cfg, str(root), require_georef=True)
    # a missing mask (core pairing rule)
    (root / 'ann_dir/train/tile_001.tif').unlink()
    with pytest.raises(FileNotFoundError, match='tile_001.tif'):
        _dataset(cfg, str(root))


def test_multiband_mask_rejected(cfg, geo_set, tmp_path):
    root = _copy_set(geo_set, tmp_path)
    ref = read_info(str(root / 'img_dir/train/tile_000.tif')).georef
    write_geotiff(str(root / 'ann_dir/train/tile_000.tif'),
                  np.zeros((32, 32, 2), np.uint8), ref)
    with pytest.raises(GeoTIFFError, match='tile_000.tif has 2 bands; a '
                       'mask must be a single band'):
        _dataset(cfg, str(root))


def test_tile_tags_match_masks(geo_set):
    root = geo_set['root']
    for split, name in (('train', 'tile_000.tif'), ('val', 'tile_004.tif')):
        assert geotiff_tags(osp.join(root, 'img_dir', split, name),
                            GEO_TAGS) == geotiff_tags(
                                osp.join(root, 'ann_dir', split, name),
                                GEO_TAGS)
