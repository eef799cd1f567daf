"""The plugin's tools and configs/industrial, run as a user would."""
import csv
import importlib.util
import json
import tomllib
from importlib.metadata import entry_points

import cv2
import pytest
import torch
from mmengine.config import Config

from dinov3_mm.models.backbones.dinov3_vit import resolve_arch
from dinov3_mm.registry import MODELS
from dinov3_mm_industrial import DINOv3PatchCore

CLS_CONFIG = 'configs/industrial/vits16_linear_defect_cls_focal.py'
AD_CONFIG = 'configs/industrial/vits16_patchcore_mvtec_like.py'
SEG_CONFIG = 'configs/industrial/vits16_unet_frozen_defect_seg_focal.py'
TINY_ARCH_JSON = ('{"embed_dims": 64, "num_layers": 2, "num_heads": 2, '
                  '"patch_size": 8}')


def _tool(repo_root, name):
    path = repo_root / 'projects' / 'industrial' / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_industrial_{name}',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packaging_declares_the_entry_point(repo_root):
    meta = tomllib.loads(
        (repo_root / 'projects/industrial/pyproject.toml').read_text())
    assert meta['project']['entry-points']['dinov3_mm.plugins'] == {
        'industrial': 'dinov3_mm_industrial'}
    assert meta['project']['dependencies'] == []  # no dinov3_mm / torch pin
    found = {ep.name: ep.value
             for ep in entry_points(group='dinov3_mm.plugins')}
    assert found.get('industrial') == 'dinov3_mm_industrial'


def test_generator_cli_writes_mvtec_layout(repo_root, tmp_path):
    gen = _tool(repo_root, 'generate_mvtec_like')
    out = tmp_path / 'mv'
    gen.main([str(out), '--categories', 'fabric', 'metal', '--size', '48',
              '--num-train', '3', '--num-test-good', '2',
              '--num-test-defect', '2'])
    for category in ('fabric', 'metal'):
        base = out / category
        assert len(list((base / 'train/good').glob('*.png'))) == 3
        assert len(list((base / 'test/good').glob('*.png'))) == 2
        for defect in ('scratch', 'blob'):
            images = sorted((base / 'test' / defect).glob('*.png'))
            assert len(images) == 2
            for image in images:
                mask = cv2.imread(
                    str(base / 'ground_truth' / defect /
                        f'{image.stem}_mask.png'), cv2.IMREAD_UNCHANGED)
                assert mask.shape == (48, 48)  # single channel, image size
                assert set(mask.flatten().tolist()) == {0, 255}
                assert cv2.imread(str(image)).shape == (48, 48, 3)


def test_generator_cli_writes_imbalanced_classification(repo_root, tmp_path):
    gen = _tool(repo_root, 'generate_mvtec_like')
    out = tmp_path / 'cls'
    gen.main([str(out), '--layout', 'classification', '--size', '32',
              '--num-good', '12', '--num-defect', '2'])
    counts = {(p.parent.parent.name, p.parent.name): 0
              for p in out.glob('*/*/*.png')}
    for p in out.glob('*/*/*.png'):
        counts[(p.parent.parent.name, p.parent.name)] += 1
    assert counts == {('train', 'good'): 12, ('train', 'scratch'): 2,
                      ('train', 'blob'): 2, ('val', 'good'): 4,
                      ('val', 'scratch'): 4, ('val', 'blob'): 4,
                      ('test', 'good'): 4, ('test', 'scratch'): 4,
                      ('test', 'blob'): 4}


def test_anomaly_tool_end_to_end(repo_root, tmp_path, run_cmd):
    from dinov3_mm_industrial.synthetic import write_mvtec_like
    data = tmp_path / 'data'
    write_mvtec_like(str(data), categories=('fabric', ), num_train=8,
                     num_test_good=4, num_test_defect=3, size=64, seed=1)
    tool = repo_root / 'projects/industrial/tools/anomaly_detect.py'
    proc = run_cmd([
        tool, data, '--arch', TINY_ARCH_JSON, '--img-size', '64',
        '--out-dir', tmp_path / 'out', '--cfg-options', 'model.pool_size=1',
        'model.sigma=2'
    ])
    assert 'image AUROC' in proc.stdout and 'fabric' in proc.stdout
    metrics = json.loads((tmp_path / 'out/metrics.json').read_text())
    assert metrics['fabric']['num_test'] == 10
    assert metrics['fabric']['image_auroc'] >= 0.8
    assert metrics['fabric']['pixel_auroc'] >= 0.9
    with open(tmp_path / 'out/fabric/scores.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10
    assert {r['label'] for r in rows} == {'good', 'scratch', 'blob'}
    assert all(r['is_anomaly'] == str(int(r['label'] != 'good'))
               for r in rows)
    amap = cv2.imread(str(tmp_path / 'out/fabric/maps/blob/000.png'),
                      cv2.IMREAD_UNCHANGED)
    assert amap.shape == (64, 64) and amap.max() > amap.min()
    assert cv2.imread(str(tmp_path / 'out/fabric/overlays/good/000.png')
                      ).shape == (64, 64, 3)
    # a folder without categories: the error names it
    ad = _tool(repo_root, 'anomaly_detect')
    with pytest.raises(FileNotFoundError) as info:
        ad.main([str(tmp_path / 'out'), '--arch', TINY_ARCH_JSON])
    assert 'No MVTec-style category under' in str(info.value)
    assert str(tmp_path / 'out') in str(info.value)


def test_anomaly_config_builds_the_detector(repo_root, tmp_path):
    ad = _tool(repo_root, 'anomaly_detect')
    args = ad.parse_args([
        str(tmp_path), '--config', str(repo_root / AD_CONFIG), '--img-size',
        '32', '--layers', '-1', '--cfg-options',
        'model.subsample.ratio=0.5'
    ])
    cfg = ad.load_config(args)
    assert (cfg.data_root, cfg.img_size) == (str(tmp_path), 32)
    assert cfg.model.backbone.out_indices == (-1, )
    assert cfg.model.subsample == dict(method='greedy', ratio=0.5,
                                       proj_dim=128, seed=0)
    detector = MODELS.build(cfg.model)
    assert isinstance(detector, DINOv3PatchCore)
    assert detector.backbone.embed_dims == 384  # ViT-S/16
    assert detector.backbone.patch_size == 16
    assert torch.allclose(detector.mean.flatten(),
                          torch.tensor([123.675, 116.28, 103.53]))


def test_cls_config_trains_with_train_tool(repo_root, tmp_path, run_cmd):
    from dinov3_mm_industrial.synthetic import write_defect_classification
    data = tmp_path / 'defects'
    write_defect_classification(
        str(data), dict(train=dict(good=12, scratch=2, blob=2),
                        val=dict(good=4, scratch=2, blob=2)), size=32)
    roots = [f'{s}_dataloader.dataset.data_root={data}'
             for s in ('train', 'val', 'test')]
    small = [f'{s}_dataloader.dataset.pipeline.1.size=32'
             for s in ('train', 'val', 'test')]
    loaders = [f'{s}_dataloader.{k}' for s in ('train', 'val')
               for k in ('num_workers=0', 'persistent_workers=False')]
    work_dir = tmp_path / 'work'
    proc = run_cmd([
        repo_root / 'tools/train.py', repo_root / CLS_CONFIG, '--work-dir',
        work_dir, '--cfg-options', *roots, *small, *loaders,
        'model.backbone.arch.embed_dims=32',
        'model.backbone.arch.num_layers=1', 'model.backbone.arch.num_heads=2',
        'model.backbone.frozen_stages=1',
        'model.head.in_channels=64', 'train_cfg.max_epochs=1'
    ])
    log = proc.stdout + proc.stderr
    assert 'ClassWeightedSampler: class counts' in log
    assert "{'good': 12, 'scratch': 2, 'blob': 2}" in log
    for key in ('defect/auroc', 'defect/precision@recall95',
                'defect/recall@precision90', 'defect/threshold'):
        assert key in log, key
    assert (work_dir / 'epoch_1.pth').is_file()
    assert (work_dir / 'best_defect_auroc_epoch_1.pth').is_file()
    ckpt = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    assert ckpt['meta']['epoch'] == 1
    dumped = (work_dir / 'vits16_linear_defect_cls_focal.py').read_text()
    assert "type='ClsFocalLoss'" in dumped
    assert "type='ClassWeightedSampler'" in dumped
    # the val sweep file, relative to the run's folder, one row per score
    sweep = (tmp_path / 'work_dirs/vits16_linear_defect_cls_focal/'
             'val_sweep.csv')
    with open(sweep, newline='') as f:
        rows = list(csv.DictReader(f))
    assert 1 <= len(rows) <= 8 and set(rows[0]) >= {'precision', 'recall'}
    assert {int(r['tp']) + int(r['fn']) for r in rows} == {4}


def test_cls_config_loads_as_written(repo_root):
    cfg = Config.fromfile(str(repo_root / CLS_CONFIG))
    # the spelled-out arch is exactly the released ViT-S/16
    assert resolve_arch(cfg.model.backbone.arch.to_dict()) == \
        resolve_arch('small')
    assert cfg.model.backbone.frozen_stages == 12
    assert cfg.model.head.loss == dict(type='ClsFocalLoss', gamma=2.0,
                                       alpha=[0.5, 1.0, 1.0])
    assert cfg.train_dataloader.sampler == dict(type='ClassWeightedSampler')
    assert cfg.train_dataloader.dataset.data_root == 'data/defects'
    assert [m['type'] for m in cfg.test_evaluator] == [
        'ClsMetric', 'OperatingPointMetric']


def test_cls_config_pretrained_override_loads_weights(repo_root, tmp_path):
    """The --cfg-options of the config header load a backbone checkpoint."""
    tiny = dict(embed_dims=32, num_layers=1, num_heads=2)
    source = MODELS.build(dict(type='DINOv3ViT', arch=tiny))
    ckpt = tmp_path / 'backbone.pth'
    torch.save(source.state_dict(), ckpt)  # the official flat layout
    cfg = Config.fromfile(str(repo_root / CLS_CONFIG))
    cfg.merge_from_dict({
        'model.backbone.init_cfg.checkpoint': str(ckpt),
        **{f'model.backbone.arch.{k}': v for k, v in tiny.items()},
        'model.backbone.frozen_stages': 1, 'model.head.in_channels': 64,
    })
    model = MODELS.build(cfg.model)
    model.init_weights()
    loaded = model.backbone.state_dict()
    assert all(torch.equal(v, loaded[k])
               for k, v in source.state_dict().items())


def test_generator_cli_writes_segmentation_masks(repo_root, tmp_path):
    gen = _tool(repo_root, 'generate_mvtec_like')
    out = tmp_path / 'seg'
    gen.main([str(out), '--layout', 'segmentation', '--size', '48',
              '--num-seg-train', '6'])
    masks = sorted((out / 'ann_dir/train').glob('*.png'))
    assert len(masks) == 6 and len(list((out / 'img_dir/val').glob('*'))) == 2
    values = [set(cv2.imread(str(m), cv2.IMREAD_UNCHANGED).flatten().tolist())
              for m in masks]
    # defect_fraction 0.75 of 6 rounds to 4 defective images, alternating
    # scratch (1) and blob (2); the last two are good
    assert values == [{0, 1}, {0, 2}, {0, 1}, {0, 2}, {0}, {0}]


def test_seg_config_trains(repo_root, tmp_path):
    from mmengine.runner import Runner

    from dinov3_mm_industrial.synthetic import write_defect_segmentation
    root = write_defect_segmentation(str(tmp_path / 'seg'), num_train=8,
                                     num_val=4, size=32)
    cfg = Config.fromfile(str(repo_root / SEG_CONFIG))
    assert cfg.model.loss_decode == dict(type='FocalLoss', gamma=2.0,
                                         alpha=[0.25, 1.0, 1.0])
    for split in ('train', 'val', 'test'):  # shrink: data, size, workers
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = root
        loader.num_workers, loader.persistent_workers = 0, False
        loader.batch_size = 4
        for step in loader.dataset.pipeline:
            if step['type'] == 'ResizeKeepRatioPad':
                step['size'] = 32
    cfg.model.backbone.arch = dict(embed_dims=32, num_layers=1, num_heads=2)
    cfg.model.backbone.frozen_stages = 1
    cfg.model.neck.in_channels = 32
    cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval = 1, 1
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()
    rows = runner.val_loop.evaluator.metrics[0].last_per_class
    assert [r['cls'] for r in rows] == ['background', 'scratch', 'blob']
    assert rows[1]['support'] > 0 and rows[2]['support'] > 0
    assert rows[0]['support'] > 20 * (rows[1]['support'] + rows[2]['support'])
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
