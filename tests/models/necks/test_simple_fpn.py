"""Necks: pyramid shapes, gradients, config building, block indices."""
import pytest
import torch

from dinov3_mm.models.necks.simple_fpn import (MultiLevelNeck, SimpleFPN,
                                               build_norm2d,
                                               evenly_spaced_indices)
from dinov3_mm.registry import MODELS


def assert_all_grads(module):
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, missing


def test_evenly_spaced_indices():
    assert evenly_spaced_indices(12) == [2, 5, 8, 11]
    assert evenly_spaced_indices(24) == [4, 11, 17, 23]  # official ViT-L
    assert evenly_spaced_indices(24, official=False) == [5, 11, 17, 23]
    assert evenly_spaced_indices(40) == [9, 19, 29, 39]
    assert evenly_spaced_indices(12, n=1) == [11]
    with pytest.raises(ValueError):
        evenly_spaced_indices(3, n=4)


@pytest.mark.parametrize(
    'norm',
    [dict(type='LN2d'), dict(type='GN', num_groups=8), dict(type='BN'), None])
def test_simple_fpn_shapes_and_grads(norm):
    neck = SimpleFPN(in_channels=64, out_channels=32, norm_cfg=norm)
    x = torch.randn(2, 64, 4, 4, requires_grad=True)  # 64x64 image, stride 16
    outs = neck((torch.randn(2, 64, 4, 4), x))  # uses the last map
    assert [tuple(o.shape) for o in outs] == [(2, 32, 16, 16), (2, 32, 8, 8),
                                              (2, 32, 4, 4), (2, 32, 2, 2)]
    sum(o.sum() for o in outs).backward()
    assert_all_grads(neck)
    assert x.grad is not None


def test_simple_fpn_builds_from_config_and_takes_a_tensor():
    neck = MODELS.build(
        dict(type='SimpleFPN', in_channels=16, out_channels=8,
             scales=(8, 1, 0.25)))
    assert isinstance(neck, SimpleFPN)
    outs = neck(torch.randn(1, 16, 4, 4))
    assert [o.shape[-1] for o in outs] == [32, 4, 1]


def test_multi_level_neck_shapes_grads_and_config():
    neck = MODELS.build(
        dict(type='MultiLevelNeck', in_channels=[64, 64, 48, 64],
             out_channels=32))
    assert isinstance(neck, MultiLevelNeck)
    feats = [torch.randn(2, c, 4, 4) for c in (64, 64, 48, 64)]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 32, 16, 16), (2, 32, 8, 8),
                                              (2, 32, 4, 4), (2, 32, 2, 2)]
    sum(o.sum() for o in outs).backward()
    assert_all_grads(neck)
    with pytest.raises(ValueError):
        neck(feats[:3])


def test_bad_arguments():
    with pytest.raises(ValueError):
        SimpleFPN(in_channels=8, out_channels=8, scales=(3, ))
    with pytest.raises(ValueError):
        MultiLevelNeck(in_channels=[8, 8], scales=(4, 2, 1))
    with pytest.raises(ValueError):
        build_norm2d(dict(type='Nope'), 8)
    assert isinstance(build_norm2d(None, 8), torch.nn.Identity)
