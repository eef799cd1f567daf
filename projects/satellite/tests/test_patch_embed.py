"""Patch-embedding adaptation to N bands and loading RGB checkpoints."""
import pytest
import torch
import torch.nn.functional as F

from dinov3_mm.apis import CheckpointError
from dinov3_mm.models.backbones.dinov3_convnext import DINOv3ConvNeXt
from dinov3_mm.models.backbones.dinov3_vit import DINOv3ViT
from dinov3_mm.models.backbones.weights import save_backbone
from dinov3_mm.registry import MODELS
from dinov3_mm_satellite.backbones import (MultispectralDINOv3ConvNeXt,
                                           MultispectralDINOv3ViT)
from dinov3_mm_satellite.patch_embed import (adapt_patch_embed_weight,
                                             adapt_state_dict)

KEY = 'patch_embed.proj.weight'
CONVNEXT_ARCH = dict(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32])


@pytest.fixture
def rgb_weight():
    torch.manual_seed(0)
    return torch.randn(8, 3, 4, 4)


@pytest.fixture(scope='module')
def rgb_vit(tiny_arch):
    torch.manual_seed(0)
    return DINOv3ViT(arch=tiny_arch, out_type='featmap')


def test_three_bands_is_the_identity(rgb_weight):
    out = adapt_patch_embed_weight(rgb_weight, 3)
    assert torch.equal(out, rgb_weight)
    assert out.data_ptr() != rgb_weight.data_ptr()


def test_four_bands_rule(rgb_weight):
    out = adapt_patch_embed_weight(rgb_weight, 4)
    assert out.shape == (8, 4, 4, 4)
    scale = 3 / 4
    for c in range(3):
        torch.testing.assert_close(out[:, c], rgb_weight[:, c] * scale)
    torch.testing.assert_close(out[:, 3], rgb_weight.mean(1) * scale)


def test_band_map_places_rgb(rgb_weight):
    # bands stored B, G, R, NIR, SWIR
    out = adapt_patch_embed_weight(rgb_weight, 5, rgb_band_indices=(2, 1, 0))
    scale = 3 / 5
    torch.testing.assert_close(out[:, 2], rgb_weight[:, 0] * scale)
    torch.testing.assert_close(out[:, 0], rgb_weight[:, 2] * scale)
    torch.testing.assert_close(out[:, 4], rgb_weight.mean(1) * scale)
    unscaled = adapt_patch_embed_weight(rgb_weight, 5, (2, 1, 0),
                                        rescale=False)
    torch.testing.assert_close(unscaled, out / scale)


def test_two_bands_rule(rgb_weight):
    out = adapt_patch_embed_weight(rgb_weight, 2)
    assert out.shape == (8, 2, 4, 4)
    torch.testing.assert_close(out[:, 0], rgb_weight[:, 0] * 1.5)
    torch.testing.assert_close(out[:, 1], rgb_weight[:, 1] * 1.5)
    mean_only = adapt_patch_embed_weight(rgb_weight, 2, (None, None, None))
    torch.testing.assert_close(mean_only[:, 1], rgb_weight.mean(1) * 1.5)


@pytest.mark.parametrize('bands,band_map', [(4, None), (6, (0, 1, 2)),
                                            (2, (None, None, None)),
                                            (1, (None, None, None))])
def test_activation_scale_is_kept(rgb_weight, bands, band_map):
    """A grey image repeated over the bands gives the RGB response."""
    x = torch.randn(2, 1, 8, 8)
    rgb = F.conv2d(x.expand(-1, 3, -1, -1), rgb_weight, stride=4)
    adapted = adapt_patch_embed_weight(rgb_weight, bands, band_map)
    out = F.conv2d(x.expand(-1, bands, -1, -1), adapted, stride=4)
    torch.testing.assert_close(out, rgb, rtol=1e-5, atol=1e-5)


def test_band_map_errors(rgb_weight):
    with pytest.raises(ValueError, match='one entry per pretrained input'):
        adapt_patch_embed_weight(rgb_weight, 4, (0, 1))
    with pytest.raises(ValueError, match='outside the 4 input bands'):
        adapt_patch_embed_weight(rgb_weight, 4, (0, 1, 4))
    with pytest.raises(ValueError, match='two pretrained channels to one'):
        adapt_patch_embed_weight(rgb_weight, 4, (0, 0, 1))
    with pytest.raises(ValueError, match='in_channels must be positive'):
        adapt_patch_embed_weight(rgb_weight, 0)
    with pytest.raises(KeyError, match='not in the state dict'):
        adapt_state_dict({'a': rgb_weight}, KEY, 4)


@pytest.mark.parametrize('fmt', ['official', 'hf', 'dinov3_mm'])
def test_rgb_checkpoint_loads_through_init_cfg(rgb_vit, tiny_arch, tmp_path,
                                               fmt):
    path = save_backbone(rgb_vit, str(tmp_path / f'rgb_{fmt}'), fmt)
    # the core backbone cannot take it with 4 bands
    core = DINOv3ViT(arch=tiny_arch, in_channels=4,
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError, match='shape mismatches'):
        core.init_weights()
    model = MODELS.build(
        dict(type='MultispectralDINOv3ViT', arch=tiny_arch, in_channels=4,
             out_type='featmap',
             init_cfg=dict(type='Pretrained', checkpoint=path)))
    model.init_weights()
    rgb_state, state = rgb_vit.state_dict(), model.state_dict()
    torch.testing.assert_close(state[KEY],
                               adapt_patch_embed_weight(rgb_state[KEY], 4))
    for key, value in rgb_state.items():
        if key != KEY:
            torch.testing.assert_close(state[key], value, msg=key)
    # a later init_weights (the Runner's) keeps the loaded weights
    before = model.patch_embed.proj.weight.clone()
    model.init_weights()
    assert torch.equal(model.patch_embed.proj.weight, before)
    assert model(torch.randn(1, 4, 32, 32))[0].shape == (1, 48, 2, 2)


def test_three_band_load_matches_core(rgb_vit, tiny_arch, tmp_path):
    path = save_backbone(rgb_vit, str(tmp_path / 'rgb.pth'), 'official')
    model = MultispectralDINOv3ViT(
        arch=tiny_arch, in_channels=3, out_type='featmap',
        init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    x = torch.randn(1, 3, 32, 32)
    rgb_vit.eval(), model.eval()
    torch.testing.assert_close(model(x)[0], rgb_vit(x)[0])


def test_segmentor_with_pretrained_multispectral_backbone(
        rgb_vit, tmp_path, model_cfg):
    path = save_backbone(rgb_vit, str(tmp_path / 'rgb.pth'), 'official')
    cfg = model_cfg(in_channels=5)
    cfg['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    cfg['backbone']['rgb_band_indices'] = (2, 1, 0)
    segmentor = MODELS.build(cfg)
    segmentor.init_weights()
    expected = adapt_patch_embed_weight(rgb_vit.state_dict()[KEY], 5,
                                        (2, 1, 0))
    torch.testing.assert_close(segmentor.backbone.patch_embed.proj.weight,
                               expected)
    logits = segmentor(torch.randn(2, 5, 32, 32), mode='tensor')
    assert logits.shape == (2, 4, 32, 32)


def test_other_mismatches_still_fail(rgb_vit, tmp_path):
    path = save_backbone(rgb_vit, str(tmp_path / 'rgb.pth'), 'official')
    wider = MultispectralDINOv3ViT(
        arch=dict(embed_dims=96, num_layers=2, num_heads=3), in_channels=4,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError, match='shape mismatches'):
        wider.init_weights()
    deeper = MultispectralDINOv3ViT(
        arch=dict(embed_dims=48, num_layers=3, num_heads=3), in_channels=4,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError, match='missing keys'):
        deeper.init_weights()


def test_train_stem_keeps_patch_embed_trainable(tiny_arch):
    frozen = MultispectralDINOv3ViT(arch=tiny_arch, in_channels=4,
                                    frozen_stages=2)
    assert not frozen.patch_embed.proj.weight.requires_grad
    model = MultispectralDINOv3ViT(arch=tiny_arch, in_channels=4,
                                   frozen_stages=2, train_stem=True)
    assert model.patch_embed.proj.weight.requires_grad
    assert not model.blocks[0].norm1.weight.requires_grad
    model.train()
    assert model.patch_embed.proj.weight.requires_grad


def test_convnext_stem_adapted(tmp_path):
    torch.manual_seed(0)
    rgb = DINOv3ConvNeXt(arch=CONVNEXT_ARCH)
    path = save_backbone(rgb, str(tmp_path / 'cnx.pth'), 'official')
    model = MultispectralDINOv3ConvNeXt(
        arch=CONVNEXT_ARCH, in_channels=4,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    key = 'downsample_layers.0.0.weight'
    torch.testing.assert_close(
        model.state_dict()[key],
        adapt_patch_embed_weight(rgb.state_dict()[key], 4))
    assert model(torch.randn(1, 4, 64, 64))[-1].shape[1] == 32
