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
