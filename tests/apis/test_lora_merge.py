"""Tests of folding LoRA adapters into a checkpoint (apis)."""
import pytest
import torch
from mmengine.config import Config

from dinov3_mm.apis.lora_merge import merge_lora_checkpoint
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.checkpoint_io import CheckpointError

MODEL = dict(
    type='DINOv3Classifier',
    backbone=dict(type='DINOv3ViT',
                  arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                  out_type='cls_patch_avg',
                  init_cfg=dict(type='Pretrained',
                                checkpoint='/nonexistent/weights.pth')),
    head=dict(type='LinearClsHead', num_classes=3, in_channels=128),
    lora=dict(r=4, alpha=8))


def _built(lora=True):
    cfg = Config(dict(model=MODEL))
    cfg.model.backbone.pop('init_cfg')
    if not lora:
        cfg.model.pop('lora')
    return MODELS.build(cfg.model).eval()


def test_merged_checkpoint_loads_into_plain_model(tmp_path):
    torch.manual_seed(0)
    model = _built()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'lora_B' in name:
                param.normal_(std=0.1)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), ckpt)
    out = merge_lora_checkpoint(Config(dict(model=MODEL)), str(ckpt),
                                str(tmp_path / 'merged.pth'))
    assert out == str(tmp_path / 'merged.pth')
    merged = torch.load(out, weights_only=True)
    assert merged['meta']['epoch'] == 1
    assert merged['meta']['lora_merged_from'] == str(ckpt)
    assert merged['meta']['lora'] == dict(r=4, alpha=8)
    plain = _built(lora=False)
    plain.load_state_dict(merged['state_dict'], strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), atol=1e-5, rtol=1e-5)


def test_config_without_lora_or_wrong_checkpoint(tmp_path):
    plain = dict(MODEL)
    plain.pop('lora')
    with pytest.raises(ValueError, match='model.lora is not set'):
        merge_lora_checkpoint(Config(dict(model=plain)), 'x.pth', 'y.pth')
    torch.save(dict(state_dict={'foo': torch.zeros(1)}), tmp_path / 'o.pth')
    with pytest.raises(CheckpointError):
        merge_lora_checkpoint(Config(dict(model=MODEL)),
                              str(tmp_path / 'o.pth'),
                              str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()
