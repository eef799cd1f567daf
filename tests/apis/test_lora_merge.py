"""Tests of folding LoRA adapters into a checkpoint (apis)."""
import pytest
import torch
from mmengine.config import Config

from dinov3_mm.apis.lora_merge import merge_lora_checkpoint
from dinov3_mm.utils.checkpoint_io import CheckpointError


def test_merged_checkpoint_loads_into_plain_model(tmp_path, lora_checkpoint):
    model, ckpt = lora_checkpoint['model'], lora_checkpoint['checkpoint']
    out = merge_lora_checkpoint(
        Config(dict(model=lora_checkpoint['model_cfg'])), str(ckpt),
        str(tmp_path / 'merged.pth'))
    assert out == str(tmp_path / 'merged.pth')
    merged = torch.load(out, weights_only=True)
    assert merged['meta']['epoch'] == 1
    assert merged['meta']['lora_merged_from'] == str(ckpt)
    assert merged['meta']['lora'] == dict(r=4, alpha=8)
    plain = lora_checkpoint['build'](lora=False)
    plain.load_state_dict(merged['state_dict'], strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), atol=1e-5, rtol=1e-5)


def test_config_without_lora_or_wrong_checkpoint(tmp_path, lora_checkpoint):
    model_cfg = lora_checkpoint['model_cfg']
    plain = dict(model_cfg)
    plain.pop('lora')
    with pytest.raises(ValueError, match='model.lora is not set'):
        merge_lora_checkpoint(Config(dict(model=plain)), 'x.pth', 'y.pth')
    torch.save(dict(state_dict={'foo': torch.zeros(1)}), tmp_path / 'o.pth')
    with pytest.raises(CheckpointError):
        merge_lora_checkpoint(Config(dict(model=model_cfg)),
                              str(tmp_path / 'o.pth'),
                              str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()
