import copy
import json

import pytest
import torch
from torch import nn

from dinov3_mm.models.backbones.dinov3_convnext import DINOv3ConvNeXt
from dinov3_mm.registry import MODELS

transformers = pytest.importorskip('transformers')
safetensors_torch = pytest.importorskip('safetensors.torch')

TINY = dict(depths=[1, 1, 2, 1], dims=[16, 32, 64, 128])
RESOLUTIONS = [(64, 64), (64, 96)]


def official_keys(depths, dims, in_chans=3):
    """Every state-dict key (and shape) of the official ``ConvNeXt``."""
    keys = {
        'downsample_layers.0.0.weight': (dims[0], in_chans, 4, 4),
        'downsample_layers.0.0.bias': (dims[0], ),
        'downsample_layers.0.1.weight': (dims[0], ),
        'downsample_layers.0.1.bias': (dims[0], ),
    }
    for i in range(1, 4):
        keys.update({
            f'downsample_layers.{i}.0.weight': (dims[i - 1], ),
            f'downsample_layers.{i}.0.bias': (dims[i - 1], ),
            f'downsample_layers.{i}.1.weight': (dims[i], dims[i - 1], 2, 2),
            f'downsample_layers.{i}.1.bias': (dims[i], ),
        })
    for i, (depth, dim) in enumerate(zip(depths, dims)):
        for j in range(depth):
            p = f'stages.{i}.{j}.'
            keys.update({
                p + 'gamma': (dim, ),
                p + 'dwconv.weight': (dim, 1, 7, 7),
                p + 'dwconv.bias': (dim, ),
                p + 'norm.weight': (dim, ),
                p + 'norm.bias': (dim, ),
                p + 'pwconv1.weight': (4 * dim, dim),
                p + 'pwconv1.bias': (4 * dim, ),
                p + 'pwconv2.weight': (dim, 4 * dim),
                p + 'pwconv2.bias': (dim, ),
            })
    for name in ('norm', 'norms.3'):
        keys[f'{name}.weight'] = (dims[-1], )
        keys[f'{name}.bias'] = (dims[-1], )
    return keys


def perturb_(module: nn.Module, seed: int = 0) -> None:
    """Make every parameter non-trivial so that parity tests bite."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if name.endswith('gamma'):
                param.copy_(0.5 * noise)
            else:
                param.add_(0.1 * noise)


def build_ours(**kwargs) -> DINOv3ConvNeXt:
    model = DINOv3ConvNeXt(arch=TINY, **kwargs)
    model.init_weights()
    perturb_(model)
    return model.eval()


def build_hf(model: DINOv3ConvNeXt):
    config = transformers.DINOv3ConvNextConfig(**model.hf_config())
    return transformers.DINOv3ConvNextModel(config).eval()


def images(h: int, w: int, n: int = 2) -> torch.Tensor:
    return torch.randn(
        n, 3, h, w, generator=torch.Generator().manual_seed(h * w))


def assert_tokens_close(ours: DINOv3ConvNeXt, hf_model,
                        x: torch.Tensor) -> None:
    with torch.no_grad():
        feats = ours.forward_features(x)
        hf_out = hf_model(pixel_values=x)
    tokens = hf_out.last_hidden_state
    assert tokens.shape[1] == 1 + feats['x_norm_patchtokens'].shape[1]
    torch.testing.assert_close(
        feats['x_norm_clstoken'], hf_out.pooler_output, atol=1e-4, rtol=0)
    torch.testing.assert_close(
        feats['x_norm_clstoken'], tokens[:, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(
        feats['x_norm_patchtokens'], tokens[:, 1:], atol=1e-4, rtol=0)


@pytest.mark.parametrize('hw', RESOLUTIONS)
def test_ours_to_hf_parity(hw):
    ours = build_ours()
    hf_model = build_hf(ours)
    hub_sd = DINOv3ConvNeXt.state_dict_to_hf(ours.state_dict())
    runtime_sd = {
        (k if k.startswith('layer_norm') else 'model.' + k): v
        for k, v in hub_sd.items()
    }
    hf_model.load_state_dict(runtime_sd, strict=True)
    assert_tokens_close(ours, hf_model, images(*hw))


def test_hf_from_pretrained_hub_layout(tmp_path):
    ours = build_ours(out_indices=(0, 1, 2, 3), norm_out=False)
    hub_sd = DINOv3ConvNeXt.state_dict_to_hf(ours.state_dict())
    assert not any(k.startswith('model.') for k in hub_sd)
    assert 'layer_norm.weight' in hub_sd
    (tmp_path / 'config.json').write_text(json.dumps(ours.hf_config()))
    safetensors_torch.save_file({
        k: v.contiguous()
        for k, v in hub_sd.items()
    }, str(tmp_path / 'model.safetensors'))
    hf_model, info = transformers.DINOv3ConvNextModel.from_pretrained(
        str(tmp_path), output_loading_info=True)
    assert all(not v for v in info.values()), info
    x = images(64, 96)
    assert_tokens_close(ours, hf_model.eval(), x)
    with torch.no_grad():
        hidden = hf_model(pixel_values=x, output_hidden_states=True)
        stages = ours(x)
    for ours_map, hf_map in zip(stages, hidden.hidden_states[-4:]):
        torch.testing.assert_close(ours_map, hf_map, atol=1e-4, rtol=0)


@pytest.mark.parametrize('hw', RESOLUTIONS)
def test_hf_to_ours_parity(hw):
    ours = DINOv3ConvNeXt(arch=TINY).eval()
    hf_model = build_hf(ours)
    perturb_(hf_model, seed=1)
    hf_sd = hf_model.state_dict()
    assert any(k.startswith('model.stages.') for k in hf_sd)
    ours.load_state_dict(DINOv3ConvNeXt.state_dict_from_hf(hf_sd), strict=True)
    assert_tokens_close(ours, hf_model, images(*hw))


@pytest.mark.parametrize('arch', ['small', 'base', 'large'])
def test_official_layout_of_larger_archs(arch):
    settings = DINOv3ConvNeXt.arch_zoo[arch]
    with torch.device('meta'):
        model = DINOv3ConvNeXt(arch=arch)
    expected = official_keys(settings['depths'], settings['dims'])
    assert {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
    } == expected


def test_official_state_dict_loads_strictly():
    settings = DINOv3ConvNeXt.arch_zoo['tiny']
    assert settings == dict(depths=[3, 3, 9, 3], dims=[96, 192, 384, 768])
    expected = official_keys(settings['depths'], settings['dims'])
    model = DINOv3ConvNeXt(arch='tiny')
    assert {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
    } == expected
    assert len(expected) == 182
    gen = torch.Generator().manual_seed(0)
    official = {
        k: torch.randn(shape, generator=gen)
        for k, shape in expected.items()
    }
    official['norms.3.weight'] = official['norm.weight']
    official['norms.3.bias'] = official['norm.bias']
    result = model.load_state_dict(official, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.norm.weight, official['norm.weight'])
    assert model.norms[3] is model.norm


def test_norm_alias_filled_and_checked():
    model = build_ours()
    sd = model.state_dict()
    target = DINOv3ConvNeXt(arch=TINY)
    only_norm = {k: v for k, v in sd.items() if not k.startswith('norms.')}
    target.load_state_dict(only_norm, strict=True)
    assert torch.equal(target.norm.bias, sd['norm.bias'])
    only_alias = {k: v for k, v in sd.items() if not k.startswith('norm.')}
    DINOv3ConvNeXt(arch=TINY).load_state_dict(only_alias, strict=True)
    wrapper = nn.Module()
    wrapper.backbone = DINOv3ConvNeXt(arch=TINY)
    wrapper = copy.deepcopy(wrapper)
    wrapper.load_state_dict({'backbone.' + k: v for k, v in only_norm.items()})
    assert torch.equal(wrapper.backbone.norms[3].bias, sd['norm.bias'])
    bad = dict(sd)
    bad['norms.3.weight'] = sd['norm.weight'] + 1
    with pytest.raises(ValueError, match='norms.3.weight'):
        DINOv3ConvNeXt(arch=TINY).load_state_dict(bad)


def test_official_random_init():
    model = DINOv3ConvNeXt(arch=TINY, layer_scale_init_value=1e-6)
    block = model.stages[2][1]
    assert torch.equal(block.gamma, torch.full((64, ), 1e-6))
    assert torch.equal(block.norm.weight, torch.ones(64))
    assert torch.equal(model.downsample_layers[0][1].weight, torch.ones(16))
    assert torch.equal(block.pwconv1.bias, torch.zeros(256))
    assert abs(block.pwconv1.weight.std().item() - 0.02) < 0.003
    assert block.pwconv1.weight.abs().max() <= 2.


@pytest.mark.parametrize('out_type', ['featmap', 'cls_token'])
def test_out_indices_shapes(out_type):
    model = build_ours(out_indices=(0, -3, 2, -1), out_type=out_type)
    assert model.out_indices == (0, 1, 2, 3)
    x = images(64, 96)
    with torch.no_grad():
        outs = model(x)
        feats = model.forward_features(x)
    assert len(outs) == 4
    for i, (out, dim) in enumerate(zip(outs, TINY['dims'])):
        if out_type == 'featmap':
            stride = 4 * 2**i
            assert out.shape == (2, dim, 64 // stride, 96 // stride)
        else:
            assert out.shape == (2, dim)
    if out_type == 'featmap':
        tokens = outs[3].flatten(2).transpose(1, 2)
        torch.testing.assert_close(tokens, feats['x_norm_patchtokens'])
    else:
        torch.testing.assert_close(outs[3], feats['x_norm_clstoken'])


def test_norm_out_false_matches_prenorm():
    model = build_ours(norm_out=False)
    x = images(64, 64)
    with torch.no_grad():
        (out, ) = model(x)
        feats = model.forward_features(x)
    torch.testing.assert_close(
        out.flatten(2).transpose(1, 2), feats['x_prenorm'])


def test_forward_features_official_api():
    model = build_ours()
    x1, x2 = images(64, 64), images(64, 96, n=3)
    feats = model.forward_features(x1)
    assert set(feats) == {
        'x_norm_clstoken', 'x_storage_tokens', 'x_norm_patchtokens',
        'x_prenorm', 'masks'
    }
    assert feats['x_storage_tokens'].shape == (2, 0, 128)
    assert feats['x_norm_patchtokens'].shape == (2, 4, 128)
    assert feats['masks'] is None
    both = model.forward_features([x1, x2], [None, None])
    assert [f['x_norm_patchtokens'].shape for f in both] == [(2, 4, 128),
                                                             (3, 6, 128)]
    torch.testing.assert_close(both[0]['x_norm_clstoken'],
                               feats['x_norm_clstoken'])


def test_get_intermediate_layers():
    model = build_ours()
    x = images(64, 96)
    with torch.no_grad():
        feats = model.forward_features(x)
        last = model.get_intermediate_layers(x)
        assert len(last) == 1 and last[0].shape == (2, 6, 128)
        torch.testing.assert_close(last[0], feats['x_norm_patchtokens'])
        outs = model.get_intermediate_layers(
            x, n=4, reshape=True, return_class_token=True)
        assert [p.shape for p, _ in outs] == [(2, 16, 16, 24), (2, 32, 8, 12),
                                              (2, 64, 4, 6), (2, 128, 2, 3)]
        assert [c.shape for _, c in outs] == [(2, 16), (2, 32), (2, 64),
                                              (2, 128)]
        torch.testing.assert_close(outs[3][1], feats['x_norm_clstoken'])
        raw = model.get_intermediate_layers(x, n=[-1, 0], norm=False)
        assert [r.shape for r in raw] == [(2, 384, 16), (2, 6, 128)]
        torch.testing.assert_close(raw[1], feats['x_prenorm'])
        raw_maps = model.get_intermediate_layers(
            x, n=[1], reshape=True, norm=False)
        assert raw_maps[0].shape == (2, 32, 8, 12)
        model.patch_size = 16
        resized = model.get_intermediate_layers(x, n=2, reshape=True)
        assert [r.shape for r in resized] == [(2, 64, 4, 6), (2, 128, 4, 6)]
    with pytest.raises(ValueError):
        model.get_intermediate_layers(x, n=5)


def test_frozen_stages():
    model = DINOv3ConvNeXt(arch=TINY, frozen_stages=1, drop_path_rate=0.1)
    model.init_weights()
    model.train()
    for i in range(4):
        frozen = i <= 1
        for module in (model.downsample_layers[i], model.stages[i]):
            assert all(p.requires_grad != frozen for p in module.parameters())
            assert all(m.training != frozen for m in module.modules())
    assert model.norm.weight.requires_grad and model.norm.training
    full = DINOv3ConvNeXt(arch=TINY, frozen_stages=3).train()
    assert not any(p.requires_grad for p in full.parameters())
    with pytest.raises(ValueError, match='frozen_stages'):
        DINOv3ConvNeXt(arch=TINY, frozen_stages=4)


def test_with_cp_same_output_and_grads():
    x = images(64, 64)
    results = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = build_ours(
            with_cp=with_cp, drop_path_rate=0.2, out_indices=(1, 3)).train()
        torch.manual_seed(123)
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append(([o.detach() for o in outs], grads))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)


def test_arguments_validated():
    with pytest.raises(
            ValueError,
            match=r"Unknown DINOv3ConvNeXt arch 'huge'.*"
            r"\['base', 'large', 'small', 'tiny'\]"):
        DINOv3ConvNeXt(arch='huge')
    with pytest.raises(ValueError, match='dims'):
        DINOv3ConvNeXt(arch=dict(depths=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match='out_indices'):
        DINOv3ConvNeXt(arch=TINY, out_indices=(4, ))
    with pytest.raises(ValueError, match='out_type'):
        DINOv3ConvNeXt(arch=TINY, out_type='cls_patch_avg')


@pytest.mark.parametrize('arch,num_layers', [('tiny', 8), ('base', 14)])
def test_get_layer_depth(arch, num_layers):
    with torch.device('meta'):
        model = DINOv3ConvNeXt(arch=arch)
    params = dict(model.named_parameters())
    forward_order = []
    for i in range(4):
        for module in (f'downsample_layers.{i}', f'stages.{i}'):
            forward_order += [
                f'{module}.{p}'
                for p, _ in model.get_submodule(module).named_parameters()
            ]
    forward_order += ['norm.weight', 'norm.bias']
    assert sorted(forward_order) == sorted(params)
    ids = []
    for name in forward_order:
        layer_id, total = model.get_layer_depth('backbone.' + name,
                                                'backbone.')
        assert total == num_layers
        ids.append(layer_id)
    assert ids == sorted(ids)
    assert ids[0] == 0 and ids[-1] == num_layers - 1
    assert set(ids) == set(range(num_layers))
    assert model.get_layer_depth('head.fc.weight',
                                 'backbone.') == (num_layers - 1, num_layers)
    assert model.get_layer_depth('downsample_layers.2.1.weight') == (
        3, num_layers)
    assert model.get_layer_depth('norms.3.weight')[0] == num_layers - 1


def test_registry_build():
    model = MODELS.build(
        dict(type='DINOv3ConvNeXt', arch=TINY, out_indices=(2, 3)))
    assert isinstance(model, DINOv3ConvNeXt)
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('dinov3_mm'):
        scoped = ROOT_MODELS.build(dict(type='DINOv3ConvNeXt', arch='tiny'))
    assert isinstance(scoped, DINOv3ConvNeXt)
    assert scoped.embed_dims == [96, 192, 384, 768]
