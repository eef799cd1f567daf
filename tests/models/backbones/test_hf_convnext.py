"""Tests of the Hugging Face ``DINOv3ConvNextModel`` key translation."""
import pytest
import torch

from dinov3_mm.models.backbones import hf_convnext
from dinov3_mm.models.backbones.dinov3_convnext import DINOv3ConvNeXt

transformers = pytest.importorskip('transformers')

TINY = dict(depths=[1, 1, 2, 1], dims=[16, 32, 64, 128])


def build_ours() -> DINOv3ConvNeXt:
    model = DINOv3ConvNeXt(arch=TINY)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen))
    return model.eval()


def build_hf(model: DINOv3ConvNeXt):
    config = transformers.DINOv3ConvNextConfig(**hf_convnext.hf_config(model))
    return transformers.DINOv3ConvNextModel(config).eval()


def test_hf_conversion_roundtrip():
    ours = build_ours()
    sd = ours.state_dict()
    hub_sd = hf_convnext.state_dict_to_hf(sd)
    hf_keys = {k for k in build_hf(ours).state_dict()}
    assert {'model.' + k if k.startswith('stages') else k
            for k in hub_sd} == hf_keys
    back = hf_convnext.state_dict_from_hf(hub_sd)
    assert back.keys() == sd.keys()
    for key, value in sd.items():
        assert torch.equal(back[key], value), key
    runtime = {
        ('model.' + k if k.startswith('stages') else k): v
        for k, v in hub_sd.items()
    }
    assert hf_convnext.state_dict_from_hf(runtime).keys() == sd.keys()
    with pytest.raises(KeyError, match='backbone'):
        hf_convnext.state_dict_to_hf(
            {'backbone.norm.weight': sd['norm.weight']})


def test_backbone_methods_are_the_module_functions():
    sd = build_ours().state_dict()
    hub_sd = DINOv3ConvNeXt.state_dict_to_hf(sd)
    assert hub_sd.keys() == hf_convnext.state_dict_to_hf(sd).keys()
    assert DINOv3ConvNeXt.state_dict_from_hf(hub_sd).keys() == sd.keys()


def test_state_dict_from_hf_keeps_official_layout():
    sd = build_ours().state_dict()
    converted = hf_convnext.state_dict_from_hf(sd)
    assert converted.keys() == sd.keys()
    assert all(converted[k] is v for k, v in sd.items())


def test_hf_config_accepted():
    with torch.device('meta'):
        model = DINOv3ConvNeXt(arch='base')
    config = transformers.DINOv3ConvNextConfig(**model.hf_config())
    assert config.model_type == 'dinov3_convnext'
    assert config.architectures == ['DINOv3ConvNextModel']
    assert config.hidden_sizes == [128, 256, 512, 1024]
    assert config.depths == [3, 3, 27, 3]
    assert DINOv3ConvNeXt.arch_from_hf_config(config.to_dict()) == 'base'
    assert hf_convnext.depths_and_dims_from_hf_config(config.to_dict()) == (
        [3, 3, 27, 3], [128, 256, 512, 1024])


def test_no_layer_scale_to_hf():
    model = DINOv3ConvNeXt(arch=TINY, layer_scale_init_value=0.)
    assert model.stages[0][0].gamma is None
    hub_sd = hf_convnext.state_dict_to_hf(model.state_dict())
    assert torch.equal(hub_sd['stages.0.layers.0.gamma'], torch.ones(16))
