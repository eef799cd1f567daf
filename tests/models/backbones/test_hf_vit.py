"""Tests of the Hugging Face ``DINOv3ViTModel`` key translation."""
import pytest
import torch

from dinov3_mm.models.backbones import hf_vit
from dinov3_mm.models.backbones.dinov3_vit import ARCH_ZOO, DINOv3ViT

transformers = pytest.importorskip('transformers')

TINY = dict(embed_dims=64, num_layers=2, num_heads=2)


def _hf_keys(backbone: DINOv3ViT) -> set:
    config = transformers.DINOv3ViTConfig(**hf_vit.hf_config(backbone))
    keys = transformers.DINOv3ViTModel(config).state_dict()
    return {k[len('model.'):] if k.startswith('model.') else k for k in keys}


@pytest.mark.parametrize('ffn_type', ['mlp', 'swiglu'])
def test_round_trip_and_hub_keys(ffn_type):
    model = DINOv3ViT(arch=dict(TINY, ffn_type=ffn_type))
    sd = model.state_dict()
    hub_sd = hf_vit.state_dict_to_hf(model, sd)
    assert set(hub_sd) == _hf_keys(model)
    assert all(v.is_contiguous() for v in hub_sd.values())
    back = hf_vit.state_dict_from_hf(model, hub_sd)
    assert back.keys() == sd.keys()
    for key, value in sd.items():
        assert torch.equal(back[key], value), key
    runtime = {('model.' + k if k.startswith('layer.') else k): v
               for k, v in hub_sd.items()}
    assert hf_vit.state_dict_from_hf(model, runtime).keys() == sd.keys()
    assert model.state_dict_to_hf(sd).keys() == hub_sd.keys()
    assert model.state_dict_from_hf(hub_sd).keys() == sd.keys()


def test_entries_hf_does_not_store_come_from_the_backbone():
    model = DINOv3ViT(arch=dict(TINY, untie_global_and_local_cls_norm=True))
    hub_sd = hf_vit.state_dict_to_hf(model, model.state_dict())
    assert not any('local_cls_norm' in k or 'periods' in k for k in hub_sd)
    assert 'layer.0.attention.k_proj.bias' not in hub_sd
    back = hf_vit.state_dict_from_hf(model, hub_sd)
    assert torch.equal(back['local_cls_norm.weight'], back['norm.weight'])
    assert torch.equal(back['rope_embed.periods'],
                       model.rope_embed.periods)
    assert torch.equal(back['blocks.0.attn.qkv.bias'][64:128],
                       torch.zeros(64))
    leftover = dict(hub_sd, **{'layer.9.extra': torch.zeros(1)})
    assert 'layer.9.extra' in hf_vit.state_dict_from_hf(model, leftover)


def test_no_layer_scale_written_as_ones():
    model = DINOv3ViT(arch=dict(TINY, layerscale_init=None))
    hub_sd = hf_vit.state_dict_to_hf(model, model.state_dict())
    assert torch.equal(hub_sd['layer.1.layer_scale2.lambda1'], torch.ones(64))


def test_untied_class_norm_has_no_hf_layout():
    model = DINOv3ViT(arch=dict(TINY, untie_cls_and_patch_norms=True))
    with pytest.raises(ValueError, match='untied class norm'):
        hf_vit.hf_config(model)
    with pytest.raises(ValueError, match='untied class norm'):
        hf_vit.state_dict_to_hf(model, model.state_dict())


@pytest.mark.parametrize('arch', ['small', 'small_plus'])
def test_arch_from_hf_config_finds_zoo_names(arch):
    model = DINOv3ViT(arch=arch)
    config = hf_vit.hf_config(model)
    assert config['model_type'] == hf_vit.HF_MODEL_TYPE
    assert hf_vit.arch_from_hf_config(config, ARCH_ZOO) == arch
    assert DINOv3ViT.arch_from_hf_config(config) == arch


def test_arch_from_hf_config_of_custom_arch():
    config = hf_vit.hf_config(DINOv3ViT(arch=TINY))
    arch = hf_vit.arch_from_hf_config(config, ARCH_ZOO)
    assert DINOv3ViT.resolve_arch(arch) == DINOv3ViT.resolve_arch(TINY)
    config['intermediate_size'] = 100
    config['use_gated_mlp'] = True
    with pytest.raises(ValueError, match='SwiGLU width 100'):
        hf_vit.arch_from_hf_config(config, ARCH_ZOO)
