"""Tests of converting backbone checkpoints between layouts (apis)."""
import pytest
import torch

from dinov3_mm.apis.checkpoint_conversion import (backbone_cfg_for_checkpoint,
                                                  backbone_class,
                                                  convert_checkpoint)
from dinov3_mm.models.backbones import DINOv3ConvNeXt, DINOv3ViT
from dinov3_mm.models.backbones.weights import (CheckpointError,
                                                read_checkpoint, save_backbone)
from dinov3_mm.registry import MODELS

TINY_VIT = dict(embed_dims=64, num_layers=2, num_heads=2, ffn_type='swiglu',
                ffn_ratio=3.0)
TINY_CNX = dict(depths=[1, 1, 2, 1], dims=[8, 16, 32, 64])


@pytest.mark.parametrize('cls,arch', [(DINOv3ViT, TINY_VIT),
                                      (DINOv3ConvNeXt, TINY_CNX)])
def test_round_trip_through_every_format(cls, arch, tmp_path):
    torch.manual_seed(0)
    model = cls(arch=arch)
    official = str(tmp_path / 'official.pth')
    torch.save(model.state_dict(), official)
    steps = [(official, tmp_path / 'hf', 'hf'),
             (tmp_path / 'hf', tmp_path / 'mm.pth', 'dinov3_mm'),
             (tmp_path / 'mm.pth', tmp_path / 'back.pth', 'official')]
    for src, dst, fmt in steps:
        path, cfg = convert_checkpoint(str(src), str(dst), fmt)
        assert path == str(dst)
        assert cfg['type'] == cls.__name__
        assert cls.resolve_arch(cfg['arch']) == cls.resolve_arch(arch)
        assert read_checkpoint(path).source == fmt
    back = torch.load(tmp_path / 'back.pth', weights_only=True)
    assert set(back) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(back[key], value), key


def test_cfg_from_hf_config_meta_and_shapes(tmp_path):
    small = DINOv3ViT(arch='small')
    for fmt in ('official', 'hf', 'dinov3_mm'):
        path = save_backbone(small, str(tmp_path / fmt), fmt)
        assert backbone_cfg_for_checkpoint(read_checkpoint(path)) == dict(
            type='DINOv3ViT', arch='small')
    cnx = save_backbone(DINOv3ConvNeXt(arch=TINY_CNX),
                        str(tmp_path / 'cnx.pth'), 'dinov3_mm')
    assert backbone_cfg_for_checkpoint(read_checkpoint(cnx)) == dict(
        type='DINOv3ConvNeXt', arch=TINY_CNX)
    given = backbone_cfg_for_checkpoint(read_checkpoint(cnx),
                                        'DINOv3ConvNeXt', 'tiny')
    assert given == dict(type='DINOv3ConvNeXt', arch='tiny')


def test_ssl_teacher_backbone_is_used(tmp_path):
    model = DINOv3ViT(arch=TINY_VIT)
    sd = {f'{part}.backbone.{k}': v for k, v in model.state_dict().items()
          for part in ('teacher', 'student')}
    torch.save(dict(state_dict=sd), tmp_path / 'ssl.pth')
    _, cfg = convert_checkpoint(str(tmp_path / 'ssl.pth'),
                                str(tmp_path / 'out.pth'), 'official')
    assert cfg['type'] == 'DINOv3ViT'
    assert set(torch.load(tmp_path / 'out.pth')) == set(model.state_dict())


def test_backbones_resolved_through_the_registry():
    assert backbone_class('DINOv3ViT') is MODELS.get('DINOv3ViT')
    assert backbone_class('DINOv3ConvNeXt') is DINOv3ConvNeXt
    for name in ('LinearClsHead', 'NoSuchBackbone'):
        with pytest.raises(CheckpointError,
                           match=rf"Unknown backbone '{name}'; expected one "
                           r"of \['DINOv3ConvNeXt', 'DINOv3ViT'\]"):
            backbone_class(name)


def test_undetermined_backbone_or_arch(tmp_path):
    torch.save({'foo.weight': torch.zeros(2)}, tmp_path / 'foreign.pth')
    with pytest.raises(CheckpointError, match='Cannot tell which backbone'):
        backbone_cfg_for_checkpoint(
            read_checkpoint(str(tmp_path / 'foreign.pth')))
    save_backbone(DINOv3ViT(arch=TINY_VIT), str(tmp_path / 'hf'), 'hf')
    (tmp_path / 'hf' / 'config.json').unlink()
    from safetensors.torch import load_file
    torch.save(load_file(str(tmp_path / 'hf' / 'model.safetensors')),
               tmp_path / 'hf.pth')
    with pytest.raises(CheckpointError, match='without its config.json'):
        backbone_cfg_for_checkpoint(read_checkpoint(str(tmp_path / 'hf.pth')))
    assert backbone_cfg_for_checkpoint(
        read_checkpoint(str(tmp_path / 'hf.pth')),
        arch=TINY_VIT) == dict(type='DINOv3ViT', arch=TINY_VIT)


def test_wrong_arch_fails_before_writing(tmp_path):
    torch.save(DINOv3ViT(arch=TINY_VIT).state_dict(), tmp_path / 'tiny.pth')
    with pytest.raises(CheckpointError, match='shape mismatches'):
        convert_checkpoint(str(tmp_path / 'tiny.pth'), str(tmp_path / 'x'),
                           'hf', arch='small')
    assert not (tmp_path / 'x').exists()
