"""Segmentation heads: logit shapes, gradients, config building."""
import pytest
import torch

from dinov3_mm.models.backbones.dinov3_vit import DINOv3ViT
from dinov3_mm.models.heads.seg_heads import DPTHead, LinearSegHead, UNetHead
from dinov3_mm.models.necks.simple_fpn import SimpleFPN
from dinov3_mm.registry import MODELS


def assert_all_grads(module):
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, missing


def vit_maps(b=2, c=64, n=4, size=4):
    return tuple(torch.randn(b, c, size, size) for _ in range(n))


def pyramid(b=2, c=32):
    return tuple(torch.randn(b, c, s, s) for s in (16, 8, 4, 2))


def test_linear_head_single_map_and_official_bn():
    head = MODELS.build(dict(type='LinearSegHead', in_channels=64,
                             num_classes=5))
    assert isinstance(head, LinearSegHead)
    assert isinstance(head.bn, torch.nn.BatchNorm2d)
    out = head(vit_maps())
    assert out.shape == (2, 5, 4, 4)
    out.sum().backward()
    assert_all_grads(head)


def test_linear_head_concatenates_resized_maps():
    head = LinearSegHead(in_channels=[32, 32], in_index=[0, 2],
                         num_classes=3, dropout_ratio=0)
    feats = pyramid()
    out = head(feats)
    assert out.shape == (2, 3, 16, 16)
    assert head.conv_seg.in_channels == 64
    with pytest.raises(ValueError):
        LinearSegHead(in_channels=[32, 32], in_index=-1, num_classes=3)


def test_binary_head_has_one_channel():
    head = LinearSegHead(in_channels=64, num_classes=2, out_channels=1)
    assert head(vit_maps()).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError):
        LinearSegHead(in_channels=64, num_classes=3, out_channels=1)


def test_dpt_head_shapes_and_grads():
    head = MODELS.build(
        dict(type='DPTHead', in_channels=[64] * 4, channels=16,
             post_process_channels=(8, 16, 32, 64), num_classes=4))
    assert isinstance(head, DPTHead)
    feats = tuple(f.requires_grad_() for f in vit_maps())
    out = head(feats)
    assert out.shape == (2, 4, 16, 16)  # stride 4 of a 64x64 image
    out.sum().backward()
    assert_all_grads(head)
    assert all(f.grad is not None for f in feats)


def test_dpt_head_odd_size():
    head = DPTHead(in_channels=[16] * 4, channels=8,
                   post_process_channels=(8, 8, 8, 8), num_classes=2)
    out = head(tuple(torch.randn(1, 16, 5, 3) for _ in range(4)))
    assert out.shape == (1, 2, 20, 12)
    with pytest.raises(ValueError):
        head(tuple(torch.randn(1, 16, 5, 3) for _ in range(3)))


def test_unet_head_shapes_and_grads():
    head = MODELS.build(
        dict(type='UNetHead', in_channels=[32] * 4, channels=(32, 16, 8),
             num_classes=3))
    assert isinstance(head, UNetHead)
    out = head(pyramid())
    assert out.shape == (2, 3, 16, 16)
    out.sum().backward()
    assert_all_grads(head)
    with pytest.raises(ValueError):
        UNetHead(in_channels=[32] * 4, channels=(32, 16), num_classes=3)


def test_vit_simple_fpn_unet_end_to_end():
    vit = DINOv3ViT(arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                    out_type='featmap', out_indices=(-1, ))
    neck = SimpleFPN(in_channels=64, out_channels=16)
    head = UNetHead(in_channels=[16] * 4, channels=8, num_classes=3,
                    norm_cfg=dict(type='GN', num_groups=4))
    img = torch.randn(1, 3, 64, 64)
    feats = vit(img)
    assert feats[-1].shape == (1, 64, 4, 4)
    out = head(neck(feats))
    assert out.shape == (1, 3, 16, 16)
