"""DINOv3 backbones and necks inside mmdetection's own detectors.

configs/detection/mmdet_maskrcnn_vits16_simplefpn.py (``mmdet.MaskRCNN``) and
configs/detection/mmdet_dino_vits16.py (``mmdet.DINO``) are built through
the registry with tiny architectures, trained for a few iterations by
mmengine's Runner on a tiny COCO dataset written here, and validated with
``mmdet.CocoMetric``. Needs the ``det`` extra (mmdet 3.3.0) and mmcv built
with ops; in an mmcv-lite environment the tests are skipped.
"""
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope

from dinov3_mm.engine.config_check import check_config
from dinov3_mm.engine.runner import StrictRunner

REPO_ROOT = Path(__file__).resolve().parents[2]
MASK_RCNN_CFG = 'configs/detection/mmdet_maskrcnn_vits16_simplefpn.py'
DINO_CFG = 'configs/detection/mmdet_dino_vits16.py'
CLASSES = ('circle', 'square', 'triangle', 'star')
TINY_VIT = dict(embed_dims=64, num_layers=2, num_heads=2)


@pytest.fixture(scope='module', autouse=True)
def require_mmdet():
    """Skip the module where mmdet's models cannot be imported."""
    try:
        import mmdet.models  # noqa: F401
    except (ImportError, OSError) as exc:
        pytest.skip(f'mmdet models unavailable ({exc}): the `det` extra '
                    '(mmdet 3.3.0) needs mmcv built with ops, not mmcv-lite '
                    '(`make test` builds it).')


# a tiny COCO dataset ---------------------------------------------------------


def _polygon(kind: str, cx: float, cy: float, r: float) -> np.ndarray:
    if kind == 'circle':
        angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        radii = np.full_like(angles, r)
    elif kind == 'square':
        angles = np.linspace(0, 2 * np.pi, 4, endpoint=False) + np.pi / 4
        radii = np.full_like(angles, r)
    elif kind == 'triangle':
        angles = np.linspace(0, 2 * np.pi, 3, endpoint=False) - np.pi / 2
        radii = np.full_like(angles, r)
    else:  # star
        angles = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    points = np.stack([cx + radii * np.cos(angles),
                       cy + radii * np.sin(angles)], axis=1)
    return np.round(points).astype(np.int32)


def write_tiny_coco(root: Path, splits=(('train', 4), ('val', 2)),
                    seed: int = 0) -> Path:
    """``root/{split}/*.png`` + ``root/annotations/instances_{split}.json``.

    Each image (64-96 px, noisy background) holds one to three shapes of the
    four classes, with polygon masks.
    """
    rng = np.random.default_rng(seed)
    colours = [(60, 20, 220), (255, 128, 0), (0, 200, 255), (80, 200, 80)]
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    ann_id = 1
    for split, count in splits:
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            h, w = (int(v) for v in rng.choice([64, 80, 96], size=2))
            img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
            for _ in range(int(rng.integers(1, 4))):
                label = int(rng.integers(0, len(CLASSES)))
                r = float(rng.uniform(10, 18))
                cx = float(rng.uniform(r, w - r))
                cy = float(rng.uniform(r, h - r))
                poly = _polygon(CLASSES[label], cx, cy, r)
                poly[:, 0] = poly[:, 0].clip(0, w - 1)
                poly[:, 1] = poly[:, 1].clip(0, h - 1)
                cv2.fillPoly(img, [poly], colours[label])
                x1, y1 = poly.min(0)
                x2, y2 = poly.max(0)
                annotations.append(dict(
                    id=ann_id, image_id=index + 1, category_id=label + 1,
                    bbox=[float(x1), float(y1), float(x2 - x1),
                          float(y2 - y1)],
                    area=float(cv2.contourArea(poly.astype(np.float32))),
                    segmentation=[poly.reshape(-1).astype(float).tolist()],
                    iscrowd=0))
                ann_id += 1
            name = f'{index:04d}.png'
            cv2.imwrite(str(root / split / name), img)
            images.append(dict(id=index + 1, file_name=name, height=h,
                               width=w))
        coco = dict(images=images, annotations=annotations,
                    categories=[dict(id=i + 1, name=name)
                                for i, name in enumerate(CLASSES)])
        (root / 'annotations' / f'instances_{split}.json').write_text(
            json.dumps(coco))
    return root


# configs made tiny -----------------------------------------------------------


def _tiny_maskrcnn(cfg: Config) -> Config:
    model = cfg.model
    model.backbone.arch = dict(TINY_VIT)
    model.neck.in_channels = TINY_VIT['embed_dims']
    model.neck.out_channels = 32
    model.rpn_head.in_channels = model.rpn_head.feat_channels = 32
    roi = model.roi_head
    roi.bbox_roi_extractor.out_channels = 32
    roi.mask_roi_extractor.out_channels = 32
    roi.bbox_head.in_channels = 32
    roi.bbox_head.fc_out_channels = 64
    roi.mask_head.in_channels = 32
    roi.mask_head.conv_out_channels = 16
    roi.mask_head.num_convs = 1
    model.train_cfg.rpn.sampler.num = 64
    model.train_cfg.rcnn.sampler.num = 64
    model.test_cfg.rpn.nms_pre = model.test_cfg.rpn.max_per_img = 100
    return cfg


def _tiny_dino(cfg: Config) -> Config:
    model = cfg.model
    # mmdet's DINO decoder encodes reference points with a fixed 128
    # features per coordinate (coordinate_to_encoding), which ties the
    # width to 256: the depth, the queries and the FFNs are shrunk.
    model.num_queries = 20
    model.backbone.arch = dict(TINY_VIT)
    model.neck.in_channels = TINY_VIT['embed_dims']
    model.encoder.num_layers = 1
    model.encoder.layer_cfg.ffn_cfg.feedforward_channels = 64
    model.decoder.num_layers = 2
    model.decoder.layer_cfg.ffn_cfg.feedforward_channels = 64
    model.dn_cfg.group_cfg.num_dn_queries = 10
    model.test_cfg.max_per_img = 20
    return cfg


def _shrink_pipelines(cfg: Config, size: int = 96) -> None:
    for split in ('train', 'val', 'test'):
        for step in cfg[f'{split}_dataloader'].dataset.pipeline:
            if step.type == 'mmdet.Resize':
                step.scale = (size, size)
            elif step.type == 'RandomChoiceResize':
                step.scales = [(64, 64), (size, size)]


def _runner_config(path: str, tiny, data_root: Path, work_dir: Path) -> Config:
    cfg = tiny(Config.fromfile(str(REPO_ROOT / path)))
    _shrink_pipelines(cfg)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = str(data_root)
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.batch_size = 2
    # the tiny dataset has no test split: test on val
    cfg.test_dataloader.dataset.ann_file = 'annotations/instances_val.json'
    cfg.test_dataloader.dataset.data_prefix = dict(img='val/')
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = str(data_root / 'annotations/instances_val.json')
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.work_dir = str(work_dir)
    return cfg


class RecordLosses(Hook):
    """Keeps the log variables of every training iteration."""

    def __init__(self):
        self.outputs = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.outputs.append({k: float(torch.as_tensor(v).detach())
                             for k, v in outputs.items()})


def _build_model(cfg: Config):
    from mmengine.registry import MODELS
    with DefaultScope.overwrite_default_scope('dinov3_mm'):
        return MODELS.build(cfg.model)


# the configs -----------------------------------------------------------------


@pytest.mark.parametrize('path', [MASK_RCNN_CFG, DINO_CFG])
def test_config_has_empty_slot_mmdet_data_and_passes_the_check(path):
    cfg = Config.fromfile(str(REPO_ROOT / path))
    assert cfg.default_scope == 'dinov3_mm'
    assert cfg.model.backbone.type == 'dinov3_mm.DINOv3ViT'
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint=None)
    assert cfg.model.neck.type == 'dinov3_mm.SimpleFPN'
    assert cfg.model.data_preprocessor.type == 'mmdet.DetDataPreprocessor'
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.type == 'mmdet.CocoDataset'
        assert dataset.data_root == 'data/instance_shapes'
        assert dataset.ann_file == f'annotations/instances_{split}.json'
        assert dataset.pipeline[-1].type == 'mmdet.PackDetInputs'
    assert cfg.val_evaluator.type == 'mmdet.CocoMetric'
    check_config(cfg, path)


def test_maskrcnn_children_are_built_in_the_mmdet_scope():
    from mmdet.models import (CrossEntropyLoss, DetDataPreprocessor,
                              MaskRCNN, RPNHead)

    from dinov3_mm.models.backbones import DINOv3ViT
    from dinov3_mm.models.necks.simple_fpn import SimpleFPN
    cfg = _tiny_maskrcnn(Config.fromfile(str(REPO_ROOT / MASK_RCNN_CFG)))
    model = _build_model(cfg)
    assert type(model) is MaskRCNN
    assert type(model.data_preprocessor) is DetDataPreprocessor
    assert type(model.backbone) is DINOv3ViT
    assert type(model.neck) is SimpleFPN
    assert type(model.rpn_head) is RPNHead
    # dinov3_mm registers a CrossEntropyLoss too: mmdet's must be used
    assert type(model.rpn_head.loss_cls) is CrossEntropyLoss
    assert type(model.roi_head.mask_head.loss_mask) is CrossEntropyLoss
    feats = model.extract_feat(torch.randn(1, 3, 64, 96))
    assert [f.shape[-2:] for f in feats] == [(16, 24), (8, 12), (4, 6),
                                            (2, 3), (1, 1)]


def test_dino_children_are_built_in_the_mmdet_scope():
    from mmdet.models import DINO, FocalLoss

    from dinov3_mm.models.backbones import DINOv3ViT
    cfg = _tiny_dino(Config.fromfile(str(REPO_ROOT / DINO_CFG)))
    model = _build_model(cfg)
    assert type(model) is DINO
    assert type(model.backbone) is DINOv3ViT
    assert type(model.bbox_head.loss_cls) is FocalLoss
    feats = model.extract_feat(torch.randn(1, 3, 128, 128))
    assert [f.shape[-2:] for f in feats] == [(16, 16), (8, 8), (4, 4),
                                            (2, 2)]


def test_convnext_stages_and_mmdet_channel_mapper_feed_dino(tmp_path):
    """The other multi-scale route: a DINOv3 ConvNeXt's stages (strides 8,
    16, 32) through mmdet's ChannelMapper (+ a stride-64 level)."""
    from mmdet.models import ChannelMapper

    from dinov3_mm.models.backbones import DINOv3ConvNeXt
    cfg = _tiny_dino(Config.fromfile(str(REPO_ROOT / DINO_CFG)))
    cfg.model.backbone = dict(
        type='dinov3_mm.DINOv3ConvNeXt',
        arch=dict(depths=[1, 1, 1, 1], dims=[16, 32, 48, 64]),
        out_indices=(1, 2, 3))
    cfg.model.neck = dict(
        type='mmdet.ChannelMapper', in_channels=[32, 48, 64], kernel_size=1,
        out_channels=256, act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32), num_outs=4)
    model = _build_model(cfg)
    assert type(model.backbone) is DINOv3ConvNeXt
    assert type(model.neck) is ChannelMapper
    feats = model.extract_feat(torch.randn(1, 3, 128, 128))
    assert [f.shape[-2:] for f in feats] == [(16, 16), (8, 8), (4, 4),
                                            (2, 2)]


# training and validation through the Runner ----------------------------------


@pytest.mark.parametrize('path,tiny,loss_keys,metric_keys', [
    (MASK_RCNN_CFG, _tiny_maskrcnn,
     {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'},
     {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'}),
    (DINO_CFG, _tiny_dino,
     {'loss_cls', 'loss_bbox', 'loss_iou', 'enc_loss_cls', 'dn_loss_cls',
      'd0.loss_cls'},
     {'coco/bbox_mAP', 'coco/bbox_mAP_50'}),
], ids=['maskrcnn', 'dino'])
def test_config_trains_and_validates_with_mmdet_coco_metric(
        tmp_path, path, tiny, loss_keys, metric_keys):
    torch.set_num_threads(1)
    data = write_tiny_coco(tmp_path / 'instances')
    cfg = _runner_config(path, tiny, data, tmp_path / 'work')
    runner = StrictRunner.from_cfg(cfg)
    recorder = RecordLosses()
    runner.register_hook(recorder)
    runner.train()

    assert len(recorder.outputs) == 2  # 4 images, batch 2, 1 epoch
    for outputs in recorder.outputs:
        assert loss_keys <= set(outputs), sorted(outputs)
        assert all(math.isfinite(v) for v in outputs.values()), outputs
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
    metrics = runner.val_loop.run()
    assert metric_keys <= set(metrics), sorted(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 or metrics[k] == -1.0
               for k in metric_keys)


# pretrained weights through init_cfg -----------------------------------------


def test_mmdet_built_backbone_loads_our_pretrained_weights(tmp_path):
    from dinov3_mm.models.backbones import DINOv3ViT
    source = DINOv3ViT(arch=dict(TINY_VIT), out_type='featmap')
    checkpoint = tmp_path / 'tiny_vit.pth'
    torch.save(source.state_dict(), checkpoint)

    cfg = _tiny_maskrcnn(Config.fromfile(str(REPO_ROOT / MASK_RCNN_CFG)))
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    model = _build_model(cfg)
    assert not torch.equal(model.backbone.blocks[0].attn.qkv.weight,
                           source.blocks[0].attn.qkv.weight)
    model.init_weights()
    loaded = model.backbone.state_dict()
    expected = source.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    # the Runner calls init_weights() again: the weights must survive it
    model.init_weights()
    assert torch.equal(model.backbone.blocks[0].attn.qkv.weight,
                       expected['blocks.0.attn.qkv.weight'])


def test_pretrained_load_is_strict_inside_mmdet(tmp_path):
    from dinov3_mm.models.backbones import DINOv3ViT
    other = DINOv3ViT(arch=dict(embed_dims=64, num_layers=3, num_heads=2),
                      out_type='featmap')
    checkpoint = tmp_path / 'three_blocks.pth'
    torch.save(other.state_dict(), checkpoint)
    cfg = _tiny_maskrcnn(Config.fromfile(str(REPO_ROOT / MASK_RCNN_CFG)))
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    model = _build_model(cfg)
    with pytest.raises(Exception, match='blocks.2'):
        model.init_weights()
