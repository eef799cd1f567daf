"""``prefer_fused_optimizer``: fused torch optimizers where the config
leaves it open, with the same updates as torch's default implementation."""
import pytest
import torch

from dinov3_mm.engine.optimizers.fused import prefer_fused_optimizer


@pytest.mark.parametrize('name', ['AdamW', 'Adam', 'SGD', 'torch.optim.AdamW'])
def test_sets_fused_for_torch_optimizers(name):
    cfg = dict(optimizer=dict(type=name, lr=0.1))
    assert prefer_fused_optimizer(cfg)
    assert cfg['optimizer']['fused'] is True


@pytest.mark.parametrize('optimizer', [
    dict(type='AdamW', lr=0.1, fused=False),
    dict(type='AdamW', lr=0.1, foreach=True),
    dict(type='LARS', lr=0.1),
    dict(type='RMSprop', lr=0.1),
])
def test_leaves_explicit_or_other_optimizers(optimizer):
    cfg = dict(optimizer=dict(optimizer))
    assert not prefer_fused_optimizer(cfg)
    assert cfg['optimizer'] == optimizer
    assert not prefer_fused_optimizer(None)
    assert not prefer_fused_optimizer(dict(type='OptimWrapper'))


def test_class_type_is_understood():
    cfg = dict(optimizer=dict(type=torch.optim.AdamW, lr=0.1))
    assert prefer_fused_optimizer(cfg) and cfg['optimizer']['fused']


def test_fused_adamw_updates_like_the_default():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                                torch.nn.Linear(16, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                               torch.nn.Linear(16, 3))
    twin.load_state_dict(model.state_dict())
    cfg = dict(optimizer=dict(lr=1e-2, weight_decay=0.05))
    default = torch.optim.AdamW(model.parameters(), **cfg['optimizer'])
    fused = torch.optim.AdamW(twin.parameters(), fused=True,
                              **cfg['optimizer'])
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32, ))
    for _ in range(5):
        for net, opt in ((model, default), (twin, fused)):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
