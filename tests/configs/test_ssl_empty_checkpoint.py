"""The SSL recipes' empty pretrained slot: random start, logged, consistent."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import dinov3_mm  # noqa: F401
from dinov3_mm.models.ssl import dinov3_ssl
from dinov3_mm.registry import MODELS

ARCH = dict(embed_dims=64, num_layers=2, num_heads=2)


@pytest.mark.parametrize('name', ['vits16_continue_shapes.py',
                                  'vits16_lora_continue_shapes.py'])
def test_empty_slot_starts_from_random_weights(name, repo_root, monkeypatch):
    cfg = Config.fromfile(str(repo_root / 'configs' / 'ssl' / name))
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint=None)
    cfg.model.backbone.arch = ARCH
    cfg.model.dino_head = dict(out_dim=32, hidden_dim=32, bottleneck_dim=16)
    messages = []
    monkeypatch.setattr(dinov3_ssl, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()

    assert len(messages) == 1
    assert 'random weights' in messages[0]
    assert 'model.backbone.init_cfg.checkpoint' in messages[0]
    student = model.student.state_dict()
    teacher = model.teacher.state_dict()
    assert student.keys() == teacher.keys()
    assert all(torch.equal(student[k], teacher[k]) for k in student)
    if model.gram_teacher is not None:
        gram = model.gram_teacher.state_dict()
        backbone = model.student.backbone.state_dict()
        assert all(torch.equal(gram[k], backbone[k]) for k in gram)
    # the SSL losses run on the randomly initialised model
    batch = dict(global_crops=torch.rand(4, 3, 32, 32),
                 local_crops=torch.rand(4, 3, 16, 16), n_global=2)
    losses = model.loss(batch)
    assert torch.isfinite(sum(v for k, v in losses.items()
                              if k.startswith('loss_')))
