"""The command-line tools: the shipped config trained with tools/train.py in
a subprocess (as a user runs it), the plugin's thin tools called in-process
through their ``main(argv)``."""
import importlib.util
import json
import os.path as osp
import re

import numpy as np
import pytest
import tifffile
import torch
from mmengine.config import Config

from dinov3_mm.registry import MODELS
from dinov3_mm_satellite.georef import GEO_TAGS
from dinov3_mm_satellite.geotiff import (GeoTIFFError, geotiff_tags,
                                         read_info, read_mask)

CONFIG = 'configs/satellite/vits16_unet_multispectral.py'
TOOLS = 'projects/satellite/tools'
#: --cfg-options that only shrink the model: a 2-block 48-d ViT.
SHRINK = [
    'model.backbone.arch._delete_=True', 'model.backbone.arch.embed_dims=48',
    'model.backbone.arch.num_layers=2', 'model.backbone.arch.num_heads=3',
    'model.neck.in_channels=48',
]
#: ... and the run: two epochs with small crops, no worker processes.
TRAIN_SHRINK = SHRINK + [
    'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
    'custom_hooks.0.schedule=[(0,32),(1,48)]',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
]


def _tool(repo_root, name: str):
    """Import ``projects/satellite/tools/<name>.py`` as a module."""
    path = repo_root / TOOLS / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'satellite_tool_{name}',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def generated(tmp_path_factory, repo_root):
    """The set written by generate_geotiff_dataset.py (band-sequential)."""
    root = tmp_path_factory.mktemp('cli') / 'landcover'
    tool = _tool(repo_root, 'generate_geotiff_dataset')
    assert tool.main([str(root), '--train', '4', '--val', '2',
                      '--tile-size', '32', '--band-layout', 'first']) == 0
    return root


def test_generate_tool(generated, repo_root, capsys):
    info = read_info(str(generated / 'img_dir/train/tile_000.tif'))
    assert info.axes == 'SYX' and info.shape == (32, 32, 6)
    assert info.georef.epsg == 32633
    assert len(list((generated / 'img_dir/val').glob('*.tif'))) == 2
    tool = _tool(repo_root, 'generate_geotiff_dataset')
    assert tool.main([str(generated)]) == 0
    assert 'keeping it' in capsys.readouterr().out


@pytest.fixture
def checkpoint(repo_root, tmp_path):
    """A randomly initialised tiny model of the shipped config, saved."""
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.model.backbone.arch = dict(embed_dims=48, num_layers=2, num_heads=3)
    cfg.model.neck.in_channels = 48  # as SHRINK
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


def test_infer_scene_tool(generated, repo_root, checkpoint, tmp_path,
                          capsys):
    scene = generated / 'scenes' / 'scene.tif'
    out, conf = tmp_path / 'out' / 'mask.tif', tmp_path / 'out' / 'conf.tif'
    tool = _tool(repo_root, 'infer_scene')
    assert tool.main([CONFIG, str(checkpoint), str(scene), str(out),
                      '--tile-size', '32', '--overlap', '8', '--confidence',
                      str(conf), '--cfg-options', *SHRINK]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['shape'] == [64, 96] and result['num_classes'] == 4
    with tifffile.TiffFile(str(out)) as tif:
        assert tif.series[0].shape == (64, 96)
    assert geotiff_tags(str(out), GEO_TAGS) == geotiff_tags(str(scene),
                                                            GEO_TAGS)
    assert read_info(str(out)).georef.epsg == 32633
    assert read_mask(str(out)).max() < 4
    confidence = read_mask(str(conf))
    assert confidence.dtype == np.float32
    assert (confidence >= 0.25 - 1e-6).all() and (confidence <= 1).all()

    plain = tmp_path / 'plain.tif'
    tifffile.imwrite(str(plain), tifffile.imread(str(scene)),
                     photometric='minisblack')
    args = [CONFIG, str(checkpoint), str(plain), str(tmp_path / 'p.tif'),
            '--tile-size', '32', '--overlap', '0', '--cfg-options', *SHRINK]
    capsys.readouterr()
    assert tool.main(args) == 1  # a message, not a traceback
    assert 'plain.tif has no georeferencing' in capsys.readouterr().err
    with pytest.raises(GeoTIFFError, match='plain.tif has no '
                       'georeferencing'):
        tool.main(args + ['--debug'])
    assert not osp.exists(tmp_path / 'p.tif')
    assert tool.main(args[:4] + ['--allow-no-georef'] + args[4:]) == 0
    assert read_info(str(tmp_path / 'p.tif')).georef is None


def test_infer_scene_progress_bar(generated, repo_root, checkpoint,
                                  tmp_path, capsys, monkeypatch):
    """64x96 scene, 32-px windows without overlap: 2 rows of 3 windows,
    in batches of 2: 4 batches."""
    scene = generated / 'scenes' / 'scene.tif'
    tool = _tool(repo_root, 'infer_scene')
    args = [CONFIG, str(checkpoint), str(scene), str(tmp_path / 'm.tif'),
            '--tile-size', '32', '--overlap', '0', '--batch-size', '2',
            '--cfg-options', *SHRINK]
    monkeypatch.setenv('DINOV3_MM_PROGRESS', '1')
    assert tool.main(args) == 0
    assert re.search(r'scene.tif: tiles: .*\d/4 ', capsys.readouterr().err)
    monkeypatch.setenv('DINOV3_MM_PROGRESS', '0')
    assert tool.main(args) == 0
    assert 'tiles' not in capsys.readouterr().err


@pytest.mark.parametrize('content', [b'', b'II*\x00 not really a TIFF'])
def test_infer_scene_names_an_unreadable_scene_before_the_model(
        repo_root, tmp_path, capsys, content):
    scene = tmp_path / 'broken.tif'
    scene.write_bytes(content)
    broken_checkpoint = tmp_path / 'broken.pth'
    broken_checkpoint.write_bytes(b'not a checkpoint')
    tool = _tool(repo_root, 'infer_scene')
    assert tool.main([CONFIG, str(broken_checkpoint), str(scene),
                      str(tmp_path / 'mask.tif')]) == 1
    err = capsys.readouterr().err
    assert f'error: {scene} is not a readable TIFF' in err
    assert 'broken.pth' not in err  # the scene is checked first
    assert tool.main([CONFIG, str(broken_checkpoint),
                      str(tmp_path / 'missing.tif'),
                      str(tmp_path / 'mask.tif')]) == 1
    assert 'does not exist' in capsys.readouterr().err
    assert not (tmp_path / 'mask.tif').exists()


def test_compute_band_stats_tool(generated, repo_root, capsys):
    tool = _tool(repo_root, 'compute_band_stats')
    assert tool.main([str(generated / 'img_dir' / 'train'), '--scale',
                      '1e-4', '--bands', 'B4', 'B3', 'B2', '3']) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats['files'] == 4 and len(stats['mean']) == 4
    meta = json.loads((generated / 'dataset.json').read_text())
    np.testing.assert_allclose(stats['mean'][:3],
                               np.array(meta['band_stats']['mean'])[[2, 1, 0]],
                               atol=1e-6)
    assert tool.main([str(generated / 'missing')]) == 1


def test_train_tool_runs_the_shipped_config(generated, repo_root, tmp_path,
                                            python):
    """``python tools/train.py configs/satellite/... --cfg-options`` with a
    data-root override and shrinking options only."""
    work_dir = tmp_path / 'work'
    roots = [f'{split}_dataloader.dataset.data_root={generated}'
             for split in ('train', 'val', 'test')]
    proc = python(['tools/train.py', CONFIG, '--work-dir', work_dir,
                   '--cfg-options', *roots, *TRAIN_SHRINK], cwd=repo_root,
                  timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'training size 32x32' in log and 'training size 48x48' in log
    assert 'Epoch(val) [2]' in log and 'mIoU' in log
    assert (work_dir / 'epoch_2.pth').is_file()


def test_infer_scene_refuses_a_checkpoint_of_another_arch(
        generated, repo_root, tmp_path, capsys):
    """The shipped config's model (ViT-S/16) and a 2-block 48-d checkpoint:
    refused with the mismatch report, nothing written."""
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.model.backbone.arch = dict(embed_dims=48, num_layers=2, num_heads=3)
    cfg.model.neck.in_channels = 48
    torch.manual_seed(0)
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    out = tmp_path / 'mask.tif'
    tool = _tool(repo_root, 'infer_scene')
    assert tool.main([CONFIG, str(ckpt),
                      str(generated / 'scenes' / 'scene.tif'), str(out),
                      '--tile-size', '32']) == 1
    err = capsys.readouterr().err
    assert f'error: {ckpt} does not match the model of {CONFIG}' in err
    assert 'with another shape' in err and 'missing' in err
    assert not out.exists()
