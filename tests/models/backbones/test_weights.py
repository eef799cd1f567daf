"""Tests of the backbone checkpoint formats: read, detect, load, write."""
import json

import pytest
import torch

from dinov3_mm.models.backbones import DINOv3ConvNeXt, DINOv3ViT
from dinov3_mm.models.backbones.weights import (FORMATS, CheckpointError,
                                                load_pretrained,
                                                read_checkpoint,
                                                save_backbone,
                                                strip_backbone_prefix,
                                                write_backbone_checkpoint)

TINY_VIT = dict(embed_dims=64, num_layers=1, num_heads=2)
TINY_CNX = dict(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('cls,arch', [(DINOv3ViT, TINY_VIT),
                                      (DINOv3ConvNeXt, TINY_CNX)])
def test_every_format_is_detected_and_loads_strictly(fmt, cls, arch,
                                                     tmp_path):
    source = cls(arch=arch)
    path = save_backbone(source, str(tmp_path / f'w_{fmt}'), fmt)
    ckpt = read_checkpoint(path)
    assert ckpt.source == fmt
    assert ckpt.layout == ('hf' if fmt == 'hf' else 'native')
    assert (ckpt.hf_config is not None) == (fmt == 'hf')
    target = cls(arch=arch)
    report = load_pretrained(target, path)
    assert report.source == fmt and not report.missing
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_write_backbone_checkpoint_layouts(tmp_path):
    sd = {'cls_token': torch.ones(1, 1, 4)}
    write_backbone_checkpoint(str(tmp_path / 'o.pth'), 'official', sd)
    assert torch.equal(torch.load(tmp_path / 'o.pth')['cls_token'],
                       sd['cls_token'])
    write_backbone_checkpoint(str(tmp_path / 'm.pth'), 'dinov3_mm', sd,
                              meta=dict(arch='x'))
    mm = torch.load(tmp_path / 'm.pth')
    assert list(mm['state_dict']) == ['backbone.cls_token']
    assert mm['meta'] == dict(arch='x')
    hf_sd = {'embeddings.cls_token': torch.ones(1, 1, 4)}
    write_backbone_checkpoint(str(tmp_path / 'hf'), 'hf', hf_sd,
                              hf_config=dict(model_type='dinov3_vit'))
    config = json.loads((tmp_path / 'hf' / 'config.json').read_text())
    assert config == dict(model_type='dinov3_vit')
    ckpt = read_checkpoint(str(tmp_path / 'hf'))
    assert ckpt.source == 'hf' and list(ckpt.state_dict) == list(hf_sd)
    with pytest.raises(ValueError, match='config.json'):
        write_backbone_checkpoint(str(tmp_path / 'hf2'), 'hf', hf_sd)
    with pytest.raises(ValueError, match='Unknown format'):
        write_backbone_checkpoint(str(tmp_path / 'x'), 'onnx', sd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'hf', 'm.pth', 'o.pth']


def test_strip_backbone_prefix():
    t = torch.zeros(1)
    ssl = {'teacher.backbone.a': t, 'student.backbone.a': t,
           'backbone.b': t}
    assert list(strip_backbone_prefix(ssl)) == ['a']
    assert list(strip_backbone_prefix({'backbone.b': t, 'head.c': t})) == [
        'b']
    assert list(strip_backbone_prefix({'b': t})) == ['b']
    assert list(strip_backbone_prefix(ssl, 'student.backbone.')) == ['a']
    with pytest.raises(CheckpointError, match='merge_lora.py'):
        strip_backbone_prefix({'backbone.qkv.lora_A.default.weight': t})


def test_load_pretrained_errors(tmp_path):
    model = DINOv3ViT(arch=TINY_VIT)
    base_like = DINOv3ViT(arch=dict(embed_dims=128, num_layers=1,
                                    num_heads=2))
    save_backbone(base_like, str(tmp_path / 'other.pth'), 'official')
    with pytest.raises(CheckpointError, match=r'shape mismatches.*128'):
        load_pretrained(model, str(tmp_path / 'other.pth'))
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match='not a readable checkpoint'):
        load_pretrained(model, str(tmp_path / 'notes.pth'))
    with pytest.raises(CheckpointError, match='does not exist'):
        load_pretrained(model, str(tmp_path / 'missing.pth'))
    torch.save({'foo.weight': torch.zeros(2)}, tmp_path / 'foreign.pth')
    with pytest.raises(CheckpointError, match='none of its keys are known'):
        load_pretrained(model, str(tmp_path / 'foreign.pth'))
    sd = model.state_dict()
    sd.pop('norm.weight')
    torch.save(sd, tmp_path / 'partial.pth')
    with pytest.raises(CheckpointError, match='missing keys.*norm.weight'):
        load_pretrained(model, str(tmp_path / 'partial.pth'))
    report = load_pretrained(model, str(tmp_path / 'partial.pth'),
                             strict=False)
    assert report.missing == ['norm.weight']
    (tmp_path / 'dir').mkdir()
    with pytest.raises(CheckpointError, match='needs config.json'):
        read_checkpoint(str(tmp_path / 'dir'))

