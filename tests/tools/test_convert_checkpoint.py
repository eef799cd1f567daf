"""tools/convert_checkpoint.py: official <-> HF <-> dinov3_mm round trips."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from dinov3_mm.models.backbones import DINOv3ConvNeXt, DINOv3ViT
from dinov3_mm.models.backbones.weights import read_checkpoint

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'convert_checkpoint.py'
TINY_VIT = dict(embed_dims=64, num_layers=2, num_heads=2, ffn_type='swiglu',
                ffn_ratio=3.0)


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO)


def test_vit_round_trip_through_every_format(tmp_path):
    torch.manual_seed(0)
    model = DINOv3ViT(arch=TINY_VIT)
    official = tmp_path / 'official.pth'
    torch.save(model.state_dict(), official)

    steps = [(official, tmp_path / 'hf', 'hf'),
             (tmp_path / 'hf', tmp_path / 'mm.pth', 'dinov3_mm'),
             (tmp_path / 'mm.pth', tmp_path / 'back.pth', 'official')]
    for src, dst, fmt in steps:
        result = run_tool(src, dst, '--to', fmt)
        assert result.returncode == 0, result.stderr
        assert f'Wrote {fmt} checkpoint of DINOv3ViT' in result.stdout

    assert read_checkpoint(str(tmp_path / 'hf')).source == 'hf'
    assert read_checkpoint(str(tmp_path / 'mm.pth')).source == 'dinov3_mm'
    back = torch.load(tmp_path / 'back.pth', weights_only=True)
    assert set(back) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(back[key], value), key

    hf = transformers.DINOv3ViTModel.from_pretrained(str(tmp_path / 'hf'))
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        ours = model.eval().forward_features(x)['x_norm_patchtokens']
        ref = hf.eval()(pixel_values=x).last_hidden_state[:, 5:]
    assert (ours - ref).abs().max() <= 1e-4


def test_convnext_official_to_hf_infers_arch(tmp_path):
    model = DINOv3ConvNeXt(arch=dict(depths=[1, 1, 2, 1], dims=[8, 16, 32, 64]))
    torch.save(model.state_dict(), tmp_path / 'cnx.pth')
    result = run_tool(tmp_path / 'cnx.pth', tmp_path / 'cnx_hf', '--to', 'hf')
    assert result.returncode == 0, result.stderr
    hf = transformers.DINOv3ConvNextModel.from_pretrained(
        str(tmp_path / 'cnx_hf'))
    assert hf.config.depths == [1, 1, 2, 1]
    assert hf.config.hidden_sizes == [8, 16, 32, 64]


def test_named_arch_is_recognised(tmp_path):
    torch.save(DINOv3ViT(arch='small').state_dict(), tmp_path / 's.pth')
    result = run_tool(tmp_path / 's.pth', tmp_path / 's_mm.pth', '--to',
                      'dinov3_mm')
    assert result.returncode == 0, result.stderr
    assert "DINOv3ViT(arch='small')" in result.stdout


def test_wrong_arch_and_bad_file_fail_with_clear_messages(tmp_path):
    torch.save(DINOv3ViT(arch=TINY_VIT).state_dict(), tmp_path / 'tiny.pth')
    result = run_tool(tmp_path / 'tiny.pth', tmp_path / 'x', '--to', 'hf',
                      '--arch', 'small')
    assert result.returncode != 0
    assert 'shape mismatches' in result.stderr
    (tmp_path / 'junk.pth').write_bytes(b'\x00garbage')
    result = run_tool(tmp_path / 'junk.pth', tmp_path / 'y', '--to', 'hf')
    assert result.returncode != 0
    assert 'is not a readable checkpoint' in result.stderr
