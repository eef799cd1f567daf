"""DINOv3Distiller: build-time checks, frozen teacher, loss numerics, cache,
DINO-head objective."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from torch import nn

import dinov3_mm  # noqa: F401
from dinov3_mm.engine.optimizers import LayerDecayOptimWrapperConstructor
from dinov3_mm.models.distill import relational_loss, smooth_l1_loss
from dinov3_mm.models.distill.features import token_grid
from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.quiet_init import init_weights_quietly

VIT = dict(type='DINOv3ViT', arch=dict(embed_dims=48, num_layers=2,
                                       num_heads=3))
CONVNEXT = dict(type='DINOv3ConvNeXt',
                arch=dict(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32]))


@MODELS.register_module(force=True)
class VectorOnlyBackbone(nn.Module):
    """A plugin-like backbone that returns one (B, C) vector per image."""

    def __init__(self, channels: int = 12):
        super().__init__()
        self.proj = nn.Conv2d(3, channels, 8, stride=8)

    def forward(self, x):
        return (self.proj(x).mean((-2, -1)), )


@MODELS.register_module(force=True)
class MapOnlyBackbone(VectorOnlyBackbone):
    """A plugin-like backbone that returns a (B, C, h, w) stride-8 map."""

    def forward(self, x):
        return (self.proj(x), )


def build(teacher=VIT, student=CONVNEXT, **kwargs):
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    model = MODELS.build(dict(type='DINOv3Distiller', teacher=teacher,
                              student=student, **kwargs))
    init_weights_quietly(model)
    return model


def images(batch=4, size=64):
    torch.manual_seed(1)
    return torch.randn(batch, 3, size, size)


def weighted(losses):
    return sum(v for k, v in losses.items() if k.startswith('loss_'))


def test_unmatched_pair_fails_at_build_time_naming_both_types():
    with pytest.raises(TypeError) as info:
        build(student=dict(type='VectorOnlyBackbone'))
    message = str(info.value)
    assert 'teacher DINOv3ViT' in message
    assert 'student VectorOnlyBackbone' in message
    assert "dense_loss ['cosine']" in message and 'the student' in message
    # without a dense term the same pair is fine; a map backbone gives both
    model = build(student=dict(type='VectorOnlyBackbone'), dense_loss={})
    assert model.student_spec.kind == 'vector'
    assert set(weighted_keys(model)) == {'loss_global_cosine'}
    model = build(student=dict(type='MapOnlyBackbone'),
                  dense_loss=dict(cosine=1.0, relational=1.0))
    assert model.student_spec.kind == 'featmap'
    assert model.student_spec.width == 12
    with pytest.raises(ValueError, match=r"unknown terms \['l2'\]"):
        build(dense_loss=dict(l2=1.0))
    with pytest.raises(ValueError, match='every loss weight is 0'):
        build(global_loss={}, dense_loss={})


def weighted_keys(model):
    return [k for k in model(images(2), mode='loss') if k.startswith('loss_')]


def test_teacher_frozen_and_every_term_decreases_on_a_fixed_batch():
    model = build(global_loss=dict(cosine=1.0, smooth_l1=1.0),
                  dense_loss=dict(cosine=1.0, relational=1.0))
    teacher_before = {k: v.clone()
                      for k, v in model.teacher_backbone.state_dict().items()}
    assert not any(p.requires_grad
                   for p in model.teacher_backbone.parameters())
    constructor = LayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3)))
    optim = constructor(model)
    in_optimizer = {id(p) for group in optim.param_groups
                    for p in group['params']}
    assert not in_optimizer & {id(p)
                               for p in model.teacher_backbone.parameters()}
    assert {id(p) for p in model.backbone.parameters()} <= in_optimizer
    model.train()
    assert model.backbone.training and not model.teacher_backbone.training
    x = images()
    history = []
    for _ in range(12):
        losses = model(x, mode='loss')
        history.append({k: v.item() for k, v in losses.items()})
        optim.update_params(weighted(losses))
        assert all(p.grad is None
                   for p in model.teacher_backbone.parameters())
    for key in ('loss_global_cosine', 'loss_global_smooth_l1',
                'loss_dense_cosine', 'loss_dense_relational'):
        assert history[-1][key] < 0.85 * history[0][key], (key, history)
    assert history[-1]['cos_global'] > history[0]['cos_global']
    for key, value in model.teacher_backbone.state_dict().items():
        torch.testing.assert_close(value, teacher_before[key])


def test_resized_dense_terms_match_a_hand_computation():
    # teacher ViT/16 on 64 px: a 4x4 grid; student ConvNeXt: stride 32, 2x2
    model = build(global_loss=dict(cosine=2.0), dense_loss=dict(
        cosine=0.5, relational=3.0))
    x = images(batch=2)
    losses = model(x, mode='loss')
    with torch.no_grad():
        t_out = model.teacher_backbone.forward_features(x)
        s_out = model.backbone.forward_features(x)
    t_grid = t_out['x_norm_patchtokens'].reshape(2, 4, 4, 48)  # (B,h,w,D)
    s_grid = s_out['x_norm_patchtokens'].reshape(2, 2, 2, 32)
    weight = model.dense_proj.weight.detach()[:, :, 0, 0]  # (48, 32)
    bias = model.dense_proj.bias.detach()
    projected = s_grid @ weight.T + bias
    # bilinear 2 -> 4, align_corners=False: rows 0..3 sample 0, .25, .75, 1
    resize = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75],
                           [0.0, 1.0]])

    def up(grid):
        return torch.einsum('ia,jb,nabc->nijc', resize, resize, grid)

    student = up(projected)
    cos = (student * t_grid).sum(-1) / (student.norm(dim=-1) *
                                        t_grid.norm(dim=-1))
    expected_dense = 0.5 * (1 - cos).mean()
    torch.testing.assert_close(losses['loss_dense_cosine'], expected_dense,
                               rtol=1e-4, atol=1e-6)

    def gram(grid):
        flat = grid.reshape(2, 16, -1)
        flat = flat / flat.norm(dim=-1, keepdim=True)
        return flat @ flat.transpose(1, 2)

    expected_rel = 3.0 * ((gram(up(s_grid)) - gram(t_grid))**2).mean()
    torch.testing.assert_close(losses['loss_dense_relational'], expected_rel,
                               rtol=1e-4, atol=1e-6)
    # the relational term does not depend on the widths
    same = relational_loss(t_grid.permute(0, 3, 1, 2),
                           t_grid.permute(0, 3, 1, 2))
    assert float(same) < 1e-10

    proj = s_out['x_norm_clstoken'] @ model.global_proj.weight.detach().T + \
        model.global_proj.bias.detach()
    teacher_cls = t_out['x_norm_clstoken']
    expected_global = 2.0 * (1 - (proj * teacher_cls).sum(-1) /
                             (proj.norm(dim=-1) *
                              teacher_cls.norm(dim=-1))).mean()
    torch.testing.assert_close(losses['loss_global_cosine'], expected_global,
                               rtol=1e-4, atol=1e-6)
    assert token_grid(196, 224, 224) == (14, 14)
    assert token_grid(49, 224, 224) == (7, 7)
    assert token_grid(8, 64, 128) == (2, 4)


SMALL_VIT = dict(type='DINOv3ViT', arch=dict(embed_dims=24, num_layers=1,
                                             num_heads=2))


@pytest.mark.parametrize('student, global_loss, dense_loss', [
    (CONVNEXT, dict(cosine=1.0), dict(cosine=1.0)),
    (SMALL_VIT, dict(cosine=1.0), dict(cosine=1.0)),
    (CONVNEXT, {}, dict(relational=1.0)),
    (SMALL_VIT, dict(smooth_l1=1.0), {}),
])
def test_every_trainable_parameter_gets_a_gradient(student, global_loss,
                                                   dense_loss):
    # DDP without find_unused_parameters needs this
    model = build(student=student, global_loss=global_loss,
                  dense_loss=dense_loss)
    model.train()
    weighted(model(images(batch=2), mode='loss')).backward()
    unused = [n for n, p in model.named_parameters()
              if p.requires_grad and p.grad is None]
    assert not unused
    assert (model.global_proj is None) == (not global_loss)
    assert (model.dense_proj is None) == ('cosine' not in dense_loss)


def test_input_sizes_and_autocast_teacher():
    model = build(teacher_input_size=32, student_input_size=(64, 96),
                  teacher_autocast='bfloat16')
    calls = []
    model.teacher_backbone.register_forward_pre_hook(
        lambda mod, args: calls.append(args[0].shape))
    losses = model(images(batch=2, size=48), mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_dense_cosine'].dtype == torch.float32
    assert model(images(batch=2), mode='tensor').shape == (2, 32)
    with pytest.raises(ValueError, match='nothing to predict'):
        model(images(batch=2), mode='predict')
    with pytest.raises(ValueError, match='teacher_autocast'):
        build(teacher_autocast='int8')


def test_teacher_cache_reuses_outputs_keyed_by_sample_index():
    model = build(cache_teacher=True)
    runs = []
    original = model.teacher_backbone.forward_features

    def counted(x, masks=None):
        runs.append(len(x))
        return original(x, masks)

    model.teacher_backbone.forward_features = counted
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in range(4)]
    x = images()
    first = model(x, samples, mode='loss')
    second = model(x, samples, mode='loss')
    assert runs == [4]
    assert len(model._cache) == 4
    torch.testing.assert_close(second['loss_global_cosine'],
                               first['loss_global_cosine'])
    torch.testing.assert_close(second['loss_dense_cosine'],
                               first['loss_dense_cosine'])
    model(x[:2], samples[:2] + [], mode='loss')  # a subset: still cached
    assert runs == [4]
    with pytest.raises(ValueError, match="'sample_idx' to the meta_keys"):
        model(x, [DataSample() for _ in range(4)], mode='loss')


def test_dino_objective_through_the_teachers_ssl_head(tmp_path):
    init_default_scope('dinov3_mm')
    head = dict(out_dim=64, hidden_dim=32, bottleneck_dim=16, nlayers=2)
    ssl = MODELS.build(dict(type='DINOv3SSL', backbone=VIT, dino_head=head))
    init_weights_quietly(ssl)
    path = str(tmp_path / 'ssl.pth')
    torch.save(dict(state_dict=ssl.state_dict(), meta={}), path)
    teacher = dict(VIT, init_cfg=dict(type='Pretrained', checkpoint=path))
    model = build(teacher=teacher, dino_head=head, dino_head_checkpoint=path)
    for key, value in ssl.teacher.dino_head.state_dict().items():
        torch.testing.assert_close(
            model.teacher_dino_head.state_dict()[key], value)
    torch.testing.assert_close(
        model.teacher_backbone.state_dict()['blocks.1.attn.qkv.weight'],
        ssl.teacher.backbone.state_dict()['blocks.1.attn.qkv.weight'])
    model.train()
    assert not model.teacher_dino_head.training
    losses = model(images(), mode='loss')
    assert torch.isfinite(losses['loss_dino']) and losses['loss_dino'] > 0
    weighted(losses).backward()
    assert model.global_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher_dino_head.parameters())

    official = str(tmp_path / 'backbone_only.pth')
    torch.save(ssl.teacher.backbone.state_dict(), official)
    with pytest.raises(CheckpointError, match='holds no DINO head'):
        build(teacher=teacher, dino_head=head, dino_head_checkpoint=official)
    with pytest.raises(ValueError, match='needs dino_head_checkpoint'):
        build(dino_head=head)


def test_smooth_l1_is_scale_free():
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    torch.testing.assert_close(smooth_l1_loss(a, b),
                               smooth_l1_loss(5 * a + 2, 0.1 * b),
                               rtol=1e-3, atol=1e-4)
    manual = F.smooth_l1_loss(F.layer_norm(a, (16, )),
                              F.layer_norm(b, (16, )))
    torch.testing.assert_close(smooth_l1_loss(a, b), manual)
