"""DINOv3SSL: losses, gradients, the EMA teacher and configuration errors."""
import pytest
import torch

import dinov3_mm  # noqa: F401
from dinov3_mm.registry import MODELS

ARCH = dict(embed_dims=48, num_layers=2, num_heads=3)


def build(**kwargs):
    cfg = dict(type='DINOv3SSL',
               backbone=dict(type='DINOv3ViT', arch=ARCH),
               dino_head=dict(out_dim=64, hidden_dim=64, bottleneck_dim=32))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def crops(batch=4, n_local=2):
    torch.manual_seed(0)
    return dict(global_crops=torch.randn(2 * batch, 3, 32, 32),
                local_crops=torch.randn(n_local * batch, 3, 16, 16),
                n_global=2, n_local=n_local, batch_size=batch)


@pytest.mark.parametrize('centering', ['sinkhorn_knopp', 'softmax'])
def test_losses_finite_and_only_student_gets_gradients(centering):
    model = build(centering=centering, gram_loss_weight=1.0,
                  mask_probability=1.0)
    model.init_weights()
    model.train()
    losses = model(crops(), mode='loss')
    weighted = {k: v for k, v in losses.items() if k.startswith('loss_')}
    assert set(weighted) == {'loss_dino_global', 'loss_dino_local',
                             'loss_ibot', 'loss_koleo', 'loss_gram'}
    assert all(torch.isfinite(v) for v in losses.values())
    # global/local DINO terms are weighted by their crop pairs: 2 vs 2*2
    assert torch.allclose(losses['loss_dino_global'],
                          losses['dino_global'] * 2 / 6)
    assert torch.allclose(losses['loss_dino_local'],
                          losses['dino_local'] * 4 / 6)
    assert losses['ibot'] > 0  # every global crop was masked
    sum(weighted.values()).backward()
    assert model.student.backbone.blocks[0].attn.qkv.weight.grad is not None
    assert model.student.backbone.mask_token.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is None for p in model.gram_teacher.parameters())
    if centering == 'softmax':  # the centre update is applied lazily
        model.dino_loss.apply_center_update()
        model.ibot_loss.apply_center_update()
        assert model.dino_loss.center.abs().sum() > 0
        assert model.ibot_loss.center.abs().sum() > 0


def test_without_local_crops_and_teacher_tensor_mode():
    model = build()
    model.init_weights()
    losses = model(crops(n_local=0), mode='loss')
    assert 'loss_dino_local' not in losses
    assert torch.isfinite(losses['loss_dino_global'])
    feats = model(torch.randn(3, 3, 32, 32), mode='tensor')
    assert feats.shape == (3, 48)


def test_teacher_ema_update():
    model = build()
    model.init_weights()
    student = model.student.backbone.cls_token
    teacher = model.teacher.backbone.cls_token
    assert torch.equal(student, teacher)
    with torch.no_grad():
        student.add_(1.0)
    before = teacher.clone()
    model.update_teacher(0.9)
    torch.testing.assert_close(teacher, 0.9 * before + 0.1 * student)
    model.update_teacher(1.0)
    torch.testing.assert_close(teacher, 0.9 * before + 0.1 * student)


def test_configuration_errors():
    with pytest.raises(TypeError, match='ViT backbone'):
        MODELS.build(dict(type='DINOv3SSL', backbone=dict(
            type='DINOv3ConvNeXt', arch='tiny')))
    with pytest.raises(ValueError, match='in_dim=32 but the backbone'):
        build(dino_head=dict(in_dim=32, out_dim=64, hidden_dim=64,
                             bottleneck_dim=32))
    with pytest.raises(ValueError, match='centering'):
        build(centering='mean')
    model = build()
    with pytest.raises(ValueError, match='batch of 1 image.*drop_last=True'):
        model(crops(batch=1), mode='loss')
    with pytest.raises(ValueError, match='mode'):
        model(crops(), mode='predict')
