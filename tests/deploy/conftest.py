"""Fixtures of the deployment tests: tiny trained-shape checkpoints on disk.

A "checkpoint" here is a randomly initialised tiny model saved in the
dinov3_mm format (``state_dict`` + ``meta.dataset_meta``), with its config
dumped next to it, so the tools read them exactly as a user's files.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_VIT = dict(embed_dims=48, num_layers=2, num_heads=3)


def _odd_images(folder: str, source: str) -> list:
    """A non-square JPEG and an RGBA PNG made from ``source``."""
    img = Image.open(source).convert('RGB')
    wide = osp.join(folder, 'wide.jpg')
    img.resize((70, 40)).save(wide, quality=90)
    rgba = osp.join(folder, 'tall_rgba.png')
    im = img.resize((36, 60)).convert('RGBA')
    im.putalpha(200)
    im.save(rgba)
    return [wide, rgba]


def _save(cfg: Config, folder: str, seed: int = 0) -> dict:
    from dinov3_mm.apis import init_model
    torch.manual_seed(seed)
    model = init_model(cfg)
    ckpt = osp.join(folder, 'model.pth')
    classes = list(cfg.test_dataloader.dataset.classes)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=classes))), ckpt)
    cfg_path = osp.join(folder, 'config.py')
    cfg.dump(cfg_path)
    return dict(config=cfg_path, checkpoint=ckpt, classes=classes)


def make_cls_checkpoint(folder: str, img_size: int = 32) -> dict:
    """Tiny ViT linear classifier on a generated shapes set in ``folder``."""
    from dinov3_mm.datasets.synthetic import write_shape_dataset
    data = osp.join(folder, 'shapes')
    write_shape_dataset(data, num_per_class=2, size=48, splits=('test', ))
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/classification/vits16_linear_probe_shapes.py'))
    cfg.model.backbone.arch = TINY_VIT
    cfg.model.backbone.frozen_stages = 2
    cfg.model.head.in_channels = 96
    cfg.test_dataloader.dataset.data_root = data
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeKeepRatioPad':
            step['size'] = img_size
    out = _save(cfg, folder)
    first = osp.join(data, 'test', 'circle', 'circle_00000.png')
    out.update(data=data, odd_images=_odd_images(folder, first))
    return out


def make_seg_checkpoint(folder: str, img_size: int = 32) -> dict:
    """Tiny ViT + SimpleFPN + UNet segmentor on generated seg shapes."""
    from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
    data = osp.join(folder, 'seg_shapes')
    write_seg_shapes_dataset(data, num_train=1, num_val=3, size=48)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/segmentation/vit_unet_seg_shapes.py'))
    cfg.model.backbone.arch = TINY_VIT
    cfg.model.neck.in_channels = 48
    cfg.test_dataloader.dataset.data_root = data
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeKeepRatioPad':
            step['size'] = img_size
    out = _save(cfg, folder)
    first = osp.join(data, 'img_dir', 'val', sorted(
        __import__('os').listdir(osp.join(data, 'img_dir', 'val')))[0])
    out.update(data=data, odd_images=_odd_images(folder, first))
    return out


@pytest.fixture(scope='module')
def cls_checkpoint(tmp_path_factory):
    return make_cls_checkpoint(str(tmp_path_factory.mktemp('cls')))


@pytest.fixture(scope='module')
def seg_checkpoint(tmp_path_factory):
    return make_seg_checkpoint(str(tmp_path_factory.mktemp('seg')))


# Tiny random models for the export and parity tests -------------------------
EXPORT_VIT = dict(type='DINOv3ViT',
                  arch=dict(embed_dims=48, num_layers=2, num_heads=3))


def _tiny_classifier(**kwargs):
    from mmengine.registry import init_default_scope

    from dinov3_mm.registry import MODELS
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    backbone = dict(EXPORT_VIT, out_type='cls_patch_avg',
                    **kwargs.pop('vit', {}))
    return MODELS.build(dict(
        type='DINOv3Classifier', backbone=backbone,
        head=dict(type='LinearClsHead', num_classes=3, in_channels=96),
        **kwargs)).eval()


def _tiny_segmentor():
    from mmengine.registry import init_default_scope

    from dinov3_mm.registry import MODELS
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='DINOv3Segmentor',
        data_preprocessor=dict(normalization='lvd1689m'),
        backbone=dict(EXPORT_VIT, out_type='featmap', out_indices=(-1, )),
        neck=dict(type='SimpleFPN', in_channels=48, out_channels=16,
                  scales=(4, 2, 1, 0.5)),
        decode_head=dict(type='UNetHead', in_channels=[16] * 4,
                         channels=(16, 16, 8), num_classes=4,
                         dropout_ratio=0.0))).eval()


def _shrunk_test_config(rel: str, size: int) -> Config:
    cfg = Config.fromfile(osp.join(REPO, rel))
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeKeepRatioPad':
            step['size'] = size
    return cfg


def _onnx_batch_dim(path: str):
    import onnx
    return onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0]


@pytest.fixture
def tiny_classifier():
    """``tiny_classifier(vit=dict(...), **model_kwargs)``: a 2-block ViT
    linear classifier (3 classes), random, eval mode."""
    return _tiny_classifier


@pytest.fixture
def tiny_segmentor():
    """``tiny_segmentor()``: 2-block ViT + SimpleFPN + UNet (4 classes)."""
    return _tiny_segmentor


@pytest.fixture
def shrunk_test_config():
    """``shrunk_test_config(rel_path, size)``: a shipped config whose test
    pipeline resizes to ``size``."""
    return _shrunk_test_config


@pytest.fixture
def onnx_batch_dim():
    """``onnx_batch_dim(path)``: the first input's batch dimension."""
    return _onnx_batch_dim


@pytest.fixture(scope='module')
def shape_images(tmp_path_factory):
    """Three generated shape images (one per class), 48x48 PNGs."""
    import glob

    from dinov3_mm.datasets.synthetic import write_shape_dataset
    root = str(tmp_path_factory.mktemp('shapes'))
    write_shape_dataset(root, num_per_class=1, size=48, splits=('test', ))
    paths = sorted(glob.glob(osp.join(root, 'test', '*', '*.png')))
    assert len(paths) == 3
    return paths
