"""DINOHead: shapes, normalised bottleneck and prototypes, init, errors."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from dinov3_mm.models.heads.dino_head import DINOHead, NormalizedPrototypes
from dinov3_mm.registry import MODELS


def small_head(**kwargs):
    cfg = dict(in_dim=16, out_dim=32, hidden_dim=24, bottleneck_dim=8)
    cfg.update(kwargs)
    return DINOHead(**cfg)


@pytest.mark.parametrize('nlayers, n_linear', [(1, 1), (2, 2), (3, 3),
                                               (4, 4)])
def test_shapes_and_mlp_depth(nlayers, n_linear):
    torch.manual_seed(0)
    head = small_head(nlayers=nlayers)
    linears = [m for m in head.mlp.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == n_linear
    assert linears[0].in_features == 16 and linears[-1].out_features == 8
    assert sum(isinstance(m, nn.GELU) for m in head.mlp.modules()) == (
        nlayers - 1)
    x = torch.randn(5, 16)
    assert head(x).shape == (5, 32)
    assert head(torch.randn(2, 3, 16)).shape == (2, 3, 32)


def test_forward_modes_match_manual_computation():
    torch.manual_seed(1)
    head = MODELS.build(
        dict(type='DINOHead', in_dim=16, out_dim=32, hidden_dim=24,
             bottleneck_dim=8))
    assert isinstance(head, DINOHead)
    x = torch.randn(4, 16)
    lin1, lin2, lin3 = [m for m in head.mlp if isinstance(m, nn.Linear)]
    z = lin3(F.gelu(lin2(F.gelu(lin1(x)))))
    z = z / z.norm(dim=-1, keepdim=True)
    bottleneck = head(x, no_last_layer=True)
    torch.testing.assert_close(bottleneck, z)
    torch.testing.assert_close(bottleneck.norm(dim=-1), torch.ones(4))
    protos = head.last_layer.weight
    expected = z @ (protos / protos.norm(dim=1, keepdim=True)).t()
    torch.testing.assert_close(head(x), expected)
    torch.testing.assert_close(head(z, only_last_layer=True), expected)
    # Logits of unit vectors against unit prototypes are cosines.
    assert head(x).abs().max() <= 1.0 + 1e-6


def test_last_layer_magnitude_fixed_to_one():
    torch.manual_seed(2)
    head = small_head()
    assert isinstance(head.last_layer, NormalizedPrototypes)
    assert 'bias' not in dict(head.last_layer.named_parameters())
    norms = head.last_layer.normalized_weight().norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(32))
    x = torch.randn(3, 16)
    before = head(x)
    with torch.no_grad():  # rescaling a prototype changes nothing
        head.last_layer.weight[:5] *= 10.0
    torch.testing.assert_close(head(x), before)
    assert 'last_layer.weight' in head.state_dict()
    assert head.state_dict()['last_layer.weight'].shape == (32, 8)


def test_plain_last_layer_option():
    head = small_head(norm_last_layer=False)
    assert type(head.last_layer) is nn.Linear
    assert head.last_layer.bias is None
    z = F.normalize(torch.randn(3, 8), dim=-1)
    torch.testing.assert_close(
        head(z, only_last_layer=True), z @ head.last_layer.weight.t())


def test_gradients_flow_to_every_parameter():
    torch.manual_seed(3)
    head = small_head()
    x = torch.randn(6, 16, requires_grad=True)
    head(x).logsumexp(dim=-1).sum().backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name
    assert x.grad is not None


def test_init_trunc_normal_zero_bias_and_runner_init_keeps_weights():
    torch.manual_seed(4)
    head = DINOHead(in_dim=256, out_dim=512, hidden_dim=512,
                    bottleneck_dim=256, mlp_bias=True)
    for module in head.modules():
        if isinstance(module, (nn.Linear, NormalizedPrototypes)):
            assert module.weight.std().item() == pytest.approx(0.02, rel=0.1)
            if getattr(module, 'bias', None) is not None:
                assert torch.count_nonzero(module.bias) == 0
    no_bias = small_head(mlp_bias=False)
    assert all(m.bias is None for m in no_bias.modules()
               if isinstance(m, nn.Linear))

    # mmengine's runner calls init_weights() on the model; it must not
    # redraw the head (a teacher copied from the student would diverge).
    class Wrapper(BaseModule):

        def __init__(self):
            super().__init__()
            self.head = small_head()

    wrapper = Wrapper()
    state = {k: v.clone() for k, v in wrapper.state_dict().items()}
    wrapper.init_weights()
    for key, value in wrapper.state_dict().items():
        assert torch.equal(value, state[key]), key
    old = wrapper.head.last_layer.weight.clone()
    wrapper.head.reset_parameters()
    assert not torch.equal(old, wrapper.head.last_layer.weight)


@pytest.mark.parametrize('kwargs, name', [
    (dict(in_dim=0), 'in_dim'),
    (dict(out_dim=-3), 'out_dim'),
    (dict(hidden_dim=0), 'hidden_dim'),
    (dict(bottleneck_dim=2.5), 'bottleneck_dim'),
    (dict(nlayers=0), 'nlayers'),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        small_head(**kwargs)
