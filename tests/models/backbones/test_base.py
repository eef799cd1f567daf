"""Tests of the behaviour every DINOv3 backbone shares: the arch zoo idiom."""
import pytest

from dinov3_mm.models.backbones import DINOv3ConvNeXt, DINOv3ViT
from dinov3_mm.models.backbones.dinov3_vit import ARCH_ZOO, resolve_arch

BACKBONES = [(DINOv3ViT, dict(embed_dims=64, num_layers=1, num_heads=2)),
             (DINOv3ConvNeXt, dict(depths=[1, 1, 1, 1], dims=[8, 8, 8, 8]))]


@pytest.mark.parametrize('cls,custom', BACKBONES)
def test_names_and_dicts_resolve_the_same_way(cls, custom):
    for name in cls.arch_zoo:
        settings = cls.resolve_arch(name.upper())
        assert settings == cls.arch_zoo[name]
        settings[next(iter(settings))] = None  # a copy, not the zoo entry
        assert cls.resolve_arch(name) == cls.arch_zoo[name]
    model = cls(arch=custom)
    assert model.arch == 'custom'
    assert model.arch_settings == cls.resolve_arch(custom)
    assert all(model.arch_settings[k] == v for k, v in custom.items())


@pytest.mark.parametrize('cls,custom', BACKBONES)
def test_same_errors(cls, custom):
    name = cls.__name__
    with pytest.raises(ValueError) as info:
        cls.resolve_arch('nope')
    assert str(info.value) == (
        f"Unknown {name} arch 'nope'; expected one of "
        f'{sorted(cls.arch_zoo)} or a dict with keys '
        f'{list(cls.arch_required_keys)}.')
    with pytest.raises(ValueError,
                       match=rf'Custom {name} arch is missing keys'):
        cls.resolve_arch({})
    with pytest.raises(TypeError, match='arch must be a str or dict'):
        cls.resolve_arch(3)


def test_named_arch_kept_on_the_model():
    assert DINOv3ConvNeXt(arch='tiny').arch == 'tiny'
    assert DINOv3ViT.arch_zoo is ARCH_ZOO
    assert resolve_arch('small') == DINOv3ViT.resolve_arch('small')
