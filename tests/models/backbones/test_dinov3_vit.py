"""Tests of the DINOv3 ViT backbone: fidelity, API, weights and bad input."""
import copy

import pytest
import torch
import transformers

from dinov3_mm.models.backbones import DINOv3ViT
from dinov3_mm.models.backbones.dinov3_vit import ARCH_ZOO
from dinov3_mm.models.backbones.weights import load_pretrained, save_backbone
from dinov3_mm.registry import MODELS

# Archs covering MLP, SwiGLU, registers, and the untied local class norm;
# the large ones at reduced depth.
PARITY_ARCHS = {
    'small': 'small',
    'small_plus': 'small_plus',
    'large_plus_depth2': dict(ARCH_ZOO['large_plus'], num_layers=2),
    '7b_like_small': dict(ARCH_ZOO['7b'], embed_dims=256, num_heads=4,
                          num_layers=2),
}
RESOLUTIONS = [(224, 224), (96, 160)]


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Perturb every parameter so no weight keeps its structured init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def _all_tokens(model: DINOv3ViT, x: torch.Tensor) -> torch.Tensor:
    feats = model.forward_features(x)
    return torch.cat((feats['x_norm_clstoken'][:, None],
                      feats['x_storage_tokens'], feats['x_norm_patchtokens']),
                     dim=1)


@pytest.mark.parametrize('arch', PARITY_ARCHS, ids=list(PARITY_ARCHS))
def test_parity_with_transformers_both_directions(arch, tmp_path):
    torch.manual_seed(0)
    ours = DINOv3ViT(arch=PARITY_ARCHS[arch]).eval()
    _randomise(ours)
    save_backbone(ours, str(tmp_path / 'hf'), 'hf')
    ref = transformers.DINOv3ViTModel.from_pretrained(
        str(tmp_path / 'hf')).eval()

    back = DINOv3ViT(arch=PARITY_ARCHS[arch]).eval()
    report = load_pretrained(back, str(tmp_path / 'hf'))
    assert report.source == 'hf' and not report.missing

    hf_random = transformers.DINOv3ViTModel(
        transformers.DINOv3ViTConfig(**ours.hf_config())).eval()
    _randomise(hf_random, seed=1)
    hf_random.save_pretrained(str(tmp_path / 'hf_random'))
    from_hf = DINOv3ViT(arch=PARITY_ARCHS[arch]).eval()
    load_pretrained(from_hf, str(tmp_path / 'hf_random'))

    for h, w in RESOLUTIONS:
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            ours_out = _all_tokens(ours, x)
            ref_out = ref(pixel_values=x).last_hidden_state
            assert ours_out.shape == ref_out.shape
            assert (ours_out - ref_out).abs().max() <= 1e-4
            assert torch.equal(_all_tokens(back, x), ours_out)
            diff = (_all_tokens(from_hf, x) -
                    hf_random(pixel_values=x).last_hidden_state).abs().max()
            assert diff <= 1e-4


def _official_state_dict(dim: int, depth: int, heads: int,
                         hidden: int) -> dict:
    """Keys and shapes of Meta's released ViT-S/16 and ViT-B/16 ``.pth``."""
    sd = {
        'cls_token': (1, 1, dim),
        'storage_tokens': (1, 4, dim),
        'mask_token': (1, dim),
        'patch_embed.proj.weight': (dim, 3, 16, 16),
        'patch_embed.proj.bias': (dim, ),
        'rope_embed.periods': (dim // heads // 4, ),
        'norm.weight': (dim, ),
        'norm.bias': (dim, ),
    }
    for i in range(depth):
        b = f'blocks.{i}.'
        sd.update({
            b + 'norm1.weight': (dim, ), b + 'norm1.bias': (dim, ),
            b + 'attn.qkv.weight': (3 * dim, dim),
            b + 'attn.qkv.bias': (3 * dim, ),
            b + 'attn.qkv.bias_mask': (3 * dim, ),
            b + 'attn.proj.weight': (dim, dim), b + 'attn.proj.bias': (dim, ),
            b + 'ls1.gamma': (dim, ),
            b + 'norm2.weight': (dim, ), b + 'norm2.bias': (dim, ),
            b + 'mlp.fc1.weight': (hidden, dim), b + 'mlp.fc1.bias': (hidden, ),
            b + 'mlp.fc2.weight': (dim, hidden), b + 'mlp.fc2.bias': (dim, ),
            b + 'ls2.gamma': (dim, ),
        })
    return {k: torch.randn(shape) for k, shape in sd.items()}


@pytest.mark.parametrize('arch,dim,heads', [('small', 384, 6),
                                            ('base', 768, 12)])
def test_official_checkpoint_layout_loads_strictly(arch, dim, heads, tmp_path):
    sd = _official_state_dict(dim, 12, heads, 4 * dim)
    path = tmp_path / f'dinov3_vit{arch[0]}16_pretrain_lvd1689m.pth'
    torch.save(sd, path)
    model = MODELS.build(
        dict(type='DINOv3ViT', arch=arch,
             init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    model.init_weights()  # a second call (e.g. the Runner's) is a no-op
    loaded = model.state_dict()
    assert set(loaded) == set(sd)
    for key, value in sd.items():
        assert torch.equal(loaded[key], value), key


def test_pretrained_survives_runner_style_init(tmp_path):
    from mmengine.model import BaseModel

    source = DINOv3ViT(arch=dict(embed_dims=64, num_layers=2, num_heads=2))
    _randomise(source)
    save_backbone(source, str(tmp_path / 'ckpt.pth'), 'dinov3_mm')

    class Wrapper(BaseModel):

        def __init__(self):
            super().__init__()
            self.backbone = DINOv3ViT(
                arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                init_cfg=dict(type='Pretrained',
                              checkpoint=str(tmp_path / 'ckpt.pth')))
            self.head = torch.nn.Linear(64, 3)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return self.head(self.backbone(inputs)[0])

    model = Wrapper()
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key


def test_rope_matches_official_formula_and_is_fp32():
    model = DINOv3ViT(arch='base')
    head_dim = 64
    expected = 100.0**(torch.arange(head_dim // 4) * 4 / head_dim)
    assert torch.allclose(model.rope_embed.periods, expected)
    sin, cos = model.rope_embed(2, 3)
    assert sin.dtype == torch.float32 and sin.shape == (6, head_dim)
    # patch (0, 0) sits at (-1 + 1/H, -1 + 1/W) with separate normalisation
    y, x = -1 + 1 / 2, -1 + 1 / 3
    angles = 2 * torch.pi * torch.cat(
        (y / expected, x / expected)).tile(2)
    assert torch.allclose(sin[0], torch.sin(angles), atol=1e-6)


def test_rope_augmentations_off_by_default_and_configurable():
    x = torch.randn(1, 3, 64, 64)
    arch = dict(embed_dims=64, num_layers=1, num_heads=2)
    model = DINOv3ViT(arch=arch).train()
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])
    aug = DINOv3ViT(arch=arch, rope_rescale_coords=2.0).train()
    with torch.no_grad():
        assert not torch.equal(aug(x)[0], aug(x)[0])
        aug.eval()
        assert torch.equal(aug(x)[0], aug(x)[0])


def test_out_types_and_indices():
    arch = dict(embed_dims=64, num_layers=4, num_heads=2)
    x = torch.randn(2, 3, 32, 48)
    shapes = {
        'featmap': (2, 64, 2, 3),
        'cls_token': (2, 64),
        'cls_patch_avg': (2, 128),
        'raw': (2, 1 + 4 + 6, 64),
    }
    for out_type, shape in shapes.items():
        model = DINOv3ViT(arch=arch, out_indices=(1, -1), out_type=out_type)
        outs = model(x)
        assert len(outs) == 2 and all(o.shape == shape for o in outs)
    model = DINOv3ViT(arch=arch, out_indices=(3, 1), out_type='featmap').eval()
    with torch.no_grad():
        late, early = model(x)
        patches = model.get_intermediate_layers(x, n=[3, 1], reshape=True)
    assert torch.equal(late, patches[0]) and torch.equal(early, patches[1])


def test_official_api_consistency():
    model = DINOv3ViT(arch=dict(embed_dims=64, num_layers=3, num_heads=2))
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        (patch, cls, extra), = model.get_intermediate_layers(
            x, n=1, return_class_token=True, return_extra_tokens=True)
        two = model.get_intermediate_layers(x, n=2, norm=False)
    assert torch.equal(patch, feats['x_norm_patchtokens'])
    assert torch.equal(cls, feats['x_norm_clstoken'])
    assert torch.equal(extra, feats['x_storage_tokens'])
    assert torch.equal(two[1], feats['x_prenorm'][:, 5:])
    assert len(two) == 2 and two[0].shape == (2, 4, 64)


def test_masks_replace_patches_with_mask_token():
    model = DINOv3ViT(arch=dict(embed_dims=64, num_layers=1, num_heads=2))
    with torch.no_grad():
        model.mask_token.fill_(3.0)
    x = torch.randn(1, 3, 32, 32)
    masks = torch.tensor([[True, False, False, True]])
    tokens, grid = model.prepare_tokens_with_masks(x, masks)
    assert grid == (2, 2)
    assert torch.all(tokens[0, 5] == 3.0) and torch.all(tokens[0, 8] == 3.0)
    assert not torch.all(tokens[0, 6] == 3.0)


def test_local_cls_norm_used_for_local_crops_in_training():
    arch = dict(embed_dims=64, num_layers=1, num_heads=2,
                untie_global_and_local_cls_norm=True)
    model = DINOv3ViT(arch=arch).train()
    with torch.no_grad():
        model.local_cls_norm.weight.fill_(2.0)
    g, l = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 16, 16)
    out_global, out_local = model.forward_features([g, l])
    with torch.no_grad():
        expected = model.local_cls_norm(out_local['x_prenorm'][:, 0])
        plain = model.norm(out_global['x_prenorm'][:, 0])
    assert torch.allclose(out_local['x_norm_clstoken'], expected)
    assert torch.allclose(out_global['x_norm_clstoken'], plain)


def test_frozen_stages_and_train_mode():
    model = DINOv3ViT(
        arch=dict(embed_dims=64, num_layers=3, num_heads=2), frozen_stages=2)
    model.train()
    assert not model.cls_token.requires_grad
    assert not model.patch_embed.proj.weight.requires_grad
    assert all(not p.requires_grad for p in model.blocks[1].parameters())
    assert all(p.requires_grad for p in model.blocks[2].parameters())
    assert not model.blocks[0].training and model.blocks[2].training
    probe = DINOv3ViT(
        arch=dict(embed_dims=64, num_layers=3, num_heads=2), frozen_stages=3)
    assert not any(p.requires_grad for p in probe.parameters())


def test_gradient_checkpointing_matches():
    arch = dict(embed_dims=64, num_layers=2, num_heads=2)
    torch.manual_seed(0)
    plain = DINOv3ViT(arch=arch).train()
    ckpt = copy.deepcopy(plain)
    ckpt.with_cp = True
    x = torch.randn(2, 3, 32, 32)
    plain(x)[0].sum().backward()
    ckpt(x)[0].sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_layer_depth_for_layerwise_decay():
    model = DINOv3ViT(arch=dict(embed_dims=64, num_layers=4, num_heads=2))
    assert model.get_layer_depth('backbone.cls_token', 'backbone.') == (0, 6)
    assert model.get_layer_depth('backbone.blocks.2.attn.qkv.weight',
                                 'backbone.') == (3, 6)
    assert model.get_layer_depth('backbone.norm.weight', 'backbone.') == (5,
                                                                          6)


def test_released_hyperparameters():
    small_plus = DINOv3ViT(arch=dict(ARCH_ZOO['small_plus'], num_layers=1))
    assert small_plus.blocks[0].mlp.w1.out_features == 1536
    huge = DINOv3ViT(arch=dict(ARCH_ZOO['huge_plus'], num_layers=1))
    assert huge.blocks[0].mlp.w1.out_features == 5120
    assert huge.blocks[0].norm1.eps == 1e-5
    assert ARCH_ZOO['7b']['ffn_type'] == 'swiglu64'
    assert ARCH_ZOO['7b']['untie_global_and_local_cls_norm']
    small = DINOv3ViT(arch='small')
    assert sum(p.numel() for p in small.parameters()) == 21_601_152
    assert small.storage_tokens.shape == (1, 4, 384)
    assert small.blocks[0].ls1.gamma.shape == (384, )
    assert torch.equal(small.blocks[0].attn.qkv.bias_mask[384:768],
                       torch.zeros(384))


def test_bf16_autocast_close_to_fp32():
    model = DINOv3ViT(arch=dict(embed_dims=64, num_layers=2,
                                num_heads=2)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)[0]
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(x)[0]
    err = (low.float() - ref).abs().max()
    assert 0 < err < 0.1  # bf16 matmuls ran, and stayed close


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown DINOv3ViT arch 'smal'"):
        DINOv3ViT(arch='smal')
    with pytest.raises(ValueError, match='missing keys'):
        DINOv3ViT(arch=dict(embed_dims=64))
    model = DINOv3ViT(arch=dict(embed_dims=64, num_layers=1, num_heads=2))
    with pytest.raises(ValueError, match='not a multiple of the patch size'):
        model(torch.randn(1, 3, 40, 32))


def test_inference_inplace_residuals_match_autograd_path():
    model = DINOv3ViT(arch=dict(embed_dims=64, num_layers=4, num_heads=2),
                      out_indices=(0, 2, 3), out_type='raw').eval()
    x = torch.randn(2, 3, 32, 32)
    with_grad = [o.detach() for o in model(x)]
    with torch.inference_mode():
        no_grad = model(x)
    for a, b in zip(with_grad, no_grad):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(no_grad[0], no_grad[1])


def test_init_weights_keeps_manually_loaded_weights():
    source = DINOv3ViT(arch=dict(embed_dims=64, num_layers=1, num_heads=2))
    target = DINOv3ViT(arch=dict(embed_dims=64, num_layers=1, num_heads=2))
    target.load_state_dict(source.state_dict())
    target.init_weights()  # as the Runner does
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
