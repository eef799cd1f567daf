"""FLOP counting (dinov3_mm.apis.complexity) and tools/analysis/get_flops.py."""
import re

import get_flops
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dinov3_mm.apis.complexity import format_count, model_complexity
from dinov3_mm.utils.cli import UserError


class _Attention(nn.Module):

    def forward(self, x):
        return F.scaled_dot_product_attention(x, x, x)


def test_hand_counts():
    linear = model_complexity(nn.Linear(8, 4), (torch.rand(2, 8), ))
    assert linear['flops'] == 2 * 8 * 4
    assert linear['params'] == 8 * 4 + 4
    conv = model_complexity(nn.Conv2d(3, 8, 3, padding=1, bias=False),
                            (torch.rand(1, 3, 16, 16), ))
    assert conv['flops'] == 16 * 16 * 8 * 3 * 3 * 3
    # q @ k^T and attn @ v: batch * heads * Lq * Lk * (d + dv)
    attention = model_complexity(_Attention(), (torch.rand(1, 2, 5, 4), ))
    assert attention['flops'] == 1 * 2 * 5 * 5 * (4 + 4)
    assert attention['uncounted'] == []


def test_format_count():
    assert format_count(999) == '999'
    assert format_count(1234567) == '1.23M'
    assert format_count(2.5e9) == '2.5G'


def _flops(capsys, *args):
    get_flops.main(list(map(str, args)))
    out = capsys.readouterr().out
    match = re.search(r'Flops: \S+ \((\d+) multiply-adds\)', out)
    assert match, out
    assert re.search(r'Params: \S+ \(\d+\)', out)
    return int(match.group(1)), out


def test_convnext_flops_scale_with_the_pixels(repo_root, capsys):
    config = repo_root / 'configs/demo/convnext_shapes.py'
    small, out = _flops(capsys, config, '--shape', 64)
    large, _ = _flops(capsys, config, '--shape', 128, 128)
    assert 'Input shape: (1, 3, 64, 64)' in out
    assert '| model' in out  # the per-module table
    # convolutions scale with H x W; only the pooled head does not
    assert 3.9 < large / small <= 4.0


def test_vit_segmentor_with_rope(repo_root, capsys):
    config = repo_root / 'configs/segmentation/vit_unet_seg_shapes.py'
    flops, out = _flops(capsys, config, '--shape', 64, '--cfg-options',
                        'model.backbone.arch.num_layers=1')
    assert flops > 0
    assert 'scaled_dot_product_attention' not in out.split('Not counted')[-1]


def test_bad_shape():
    with pytest.raises(UserError, match='--shape'):
        get_flops.input_shape([1, 2, 3], 3)
