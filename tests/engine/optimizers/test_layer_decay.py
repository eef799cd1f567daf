"""LayerDecayOptimWrapperConstructor: lrs and weight decays of named params."""
import pytest
import torch

from dinov3_mm.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

BASE_LR, WD, RATE, MULT = 1e-3, 0.05, 0.5, 0.1


def classifier(**backbone):
    return MODELS.build(dict(
        type='DINOv3Classifier',
        backbone=dict(type='DINOv3ViT', arch=dict(embed_dims=64, num_layers=2,
                                                  num_heads=2),
                      out_type='cls_patch_avg', **backbone),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=128)))


def build_optimizer(model, **paramwise):
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='LayerDecayOptimWrapperConstructor',
        optim_wrapper_cfg=dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=WD)),
        paramwise_cfg=dict(layer_decay_rate=RATE, backbone_lr_mult=MULT,
                           **paramwise)))
    return constructor(model).optimizer


def settings(optimizer):
    out = {}
    for group in optimizer.param_groups:
        for name in group['param_names']:
            out[name] = (group['lr'], group['weight_decay'])
    return out


def test_layer_wise_lrs_and_weight_decay():
    model = classifier()
    params = settings(build_optimizer(model))
    # ViT with 2 blocks: ids 0 (embeddings) .. 3 (final norm), 4 ids

    def lr(layer_id):
        return BASE_LR * MULT * RATE**(4 - layer_id - 1)

    expected = {
        'backbone.cls_token': (lr(0), 0.0),
        'backbone.storage_tokens': (lr(0), 0.0),
        'backbone.mask_token': (lr(0), 0.0),
        'backbone.patch_embed.proj.weight': (lr(0), WD),
        'backbone.patch_embed.proj.bias': (lr(0), 0.0),
        'backbone.blocks.0.attn.qkv.weight': (lr(1), WD),
        'backbone.blocks.0.attn.qkv.bias': (lr(1), 0.0),
        'backbone.blocks.0.norm1.weight': (lr(1), 0.0),
        'backbone.blocks.0.ls1.gamma': (lr(1), 0.0),
        'backbone.blocks.1.mlp.fc2.weight': (lr(2), WD),
        'backbone.norm.weight': (lr(3), 0.0),
        'head.fc.weight': (BASE_LR, WD),
        'head.fc.bias': (BASE_LR, 0.0),
    }
    for name, (want_lr, want_wd) in expected.items():
        got_lr, got_wd = params[name]
        assert got_lr == pytest.approx(want_lr), name
        assert got_wd == want_wd, name
    assert set(params) == {n for n, p in model.named_parameters()
                           if p.requires_grad}


def test_frozen_params_are_left_out():
    model = classifier(frozen_stages=1)
    params = settings(build_optimizer(model))
    assert 'backbone.cls_token' not in params
    assert 'backbone.blocks.0.attn.qkv.weight' not in params
    assert 'backbone.blocks.1.attn.qkv.weight' in params
    assert 'head.fc.weight' in params


def test_custom_no_decay_names_and_optimizer_steps():
    model = classifier()
    optimizer = build_optimizer(model, no_decay_names=('qkv', ))
    params = settings(optimizer)
    assert params['backbone.blocks.0.attn.qkv.weight'][1] == 0.0
    assert params['backbone.cls_token'][1] == WD  # 3-D, not listed
    model(torch.randn(1, 3, 32, 32)).sum().backward()
    optimizer.step()


def test_rejects_unknown_keys():
    with pytest.raises(ValueError, match='layer_decay'):
        build_optimizer(classifier(), decay_mult=0.5)


def test_convnext_uses_its_own_layer_ids():
    model = MODELS.build(dict(
        type='DINOv3Classifier',
        backbone=dict(type='DINOv3ConvNeXt',
                      arch=dict(depths=[1, 1, 3, 1], dims=[8, 16, 24, 32]),
                      out_type='cls_token'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32)))
    params = settings(build_optimizer(model))
    layer_id, num_ids = model.backbone.get_layer_depth(
        'backbone.stages.2.0.pwconv1.weight', prefix='backbone.')
    assert params['backbone.stages.2.0.pwconv1.weight'][0] == pytest.approx(
        BASE_LR * MULT * RATE**(num_ids - layer_id - 1))
    assert params['backbone.downsample_layers.0.0.weight'][0] == pytest.approx(
        BASE_LR * MULT * RATE**(num_ids - 1))
    assert params['backbone.stages.0.0.gamma'][1] == 0.0


def test_patch_embed_mult_and_nested_backbone_path():
    plain = settings(build_optimizer(classifier()))
    model = torch.nn.Module()
    model.student = classifier()  # the backbone sits at student.backbone
    params = settings(build_optimizer(model, backbone='student.backbone',
                                      patch_embed_lr_mult=0.2))
    for name, (lr, wd) in plain.items():
        nested = params['student.' + name]
        if '.patch_embed.' in name:
            assert nested == (pytest.approx(0.2 * lr), wd)
        else:
            assert nested == (pytest.approx(lr), wd)
    assert params['student.backbone.cls_token'][0] < \
        params['student.backbone.blocks.1.attn.qkv.weight'][0] < \
        params['student.head.fc.weight'][0] == pytest.approx(BASE_LR)
