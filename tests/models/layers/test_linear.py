"""The oneDNN inference path of linear layers agrees with F.linear."""
import importlib

import pytest
import torch
import torch.nn.functional as F

from dinov3_mm.models.layers import Linear, linear
from dinov3_mm.models.layers.linear import ONEDNN_LINEAR
from dinov3_mm.utils.cpu_bf16 import cpu_has_native_bf16

# the package exports the function ``linear`` under the module's name
linear_module = importlib.import_module('dinov3_mm.models.layers.linear')

pytestmark = pytest.mark.skipif(
    not ONEDNN_LINEAR, reason='this torch build has no oneDNN linear kernel')


@pytest.mark.parametrize('gelu', [False, True])
def test_fast_path_matches_reference_fp32(gelu, monkeypatch):
    monkeypatch.setattr(linear_module, 'onednn_fp32_is_faster', lambda: True)
    layer = Linear(48, 80)
    x = torch.randn(2, 7, 48)
    ref = F.linear(x, layer.weight, layer.bias)
    ref = F.gelu(ref) if gelu else ref
    with torch.no_grad():
        out = linear(x, layer, gelu=gelu)
    assert out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.skipif(not cpu_has_native_bf16(),
                    reason='oneDNN has bf16 kernels only with AVX-512 or '
                    'AVX-NE-CONVERT (tests/utils/test_cpu_bf16.py covers the '
                    'fallback)')
def test_autocast_bf16_uses_cached_weight_and_tracks_updates():
    layer = Linear(48, 80)
    x = torch.randn(3, 48)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        first = linear(x, layer)
        ref = F.linear(x, layer.weight, layer.bias)
        cached = layer._cast_cache['weight'][1]
        linear(x, layer)
        assert layer._cast_cache['weight'][1] is cached
        layer.weight.mul_(2)  # an optimizer step or load_state_dict
        second = linear(x, layer)
        assert layer._cast_cache['weight'][1] is not cached
    assert first.dtype == ref.dtype == torch.bfloat16
    assert torch.allclose(first.float(), ref.float(), atol=0.05)
    assert not torch.allclose(first.float(), second.float(), atol=0.05)


@pytest.mark.parametrize('capability, onednn', [('AVX512', True),
                                                ('AVX2', False),
                                                ('DEFAULT', False)])
def test_fp32_takes_onednn_only_where_it_is_faster(capability, onednn,
                                                   monkeypatch):
    """oneDNN's fp32 kernel beat addmm with AVX-512 and lost to it on an
    AVX2-only CPU; the choice follows the CPU, values stay the same."""
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability',
                        lambda: capability)
    linear_module.onednn_fp32_is_faster.cache_clear()
    try:
        layer = Linear(16, 8)
        x = torch.randn(5, 16)
        with torch.no_grad():
            assert linear_module._fast_path(x, layer.weight) is onednn
            out = linear(x, layer, gelu=True)
        assert torch.allclose(out, F.gelu(F.linear(x, layer.weight,
                                                   layer.bias)), atol=1e-5)
    finally:
        linear_module.onednn_fp32_is_faster.cache_clear()


def test_autograd_takes_the_differentiable_path():
    layer = Linear(8, 4)
    x = torch.randn(2, 8, requires_grad=True)
    linear(x, layer, gelu=True).sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
    assert '_cast_cache' not in layer.__dict__


def test_other_modules_are_called_so_wrappers_run():
    base = Linear(8, 4)

    class Wrapper(torch.nn.Module):  # like a peft LoRA layer
        def __init__(self):
            super().__init__()
            self.base_layer = base

        def forward(self, x):
            return self.base_layer(x) + 1.0

    x = torch.randn(2, 8)
    with torch.no_grad():
        out = linear(x, Wrapper(), gelu=True)
        expected = F.gelu(F.linear(x, base.weight, base.bias) + 1.0)
    assert torch.allclose(out, expected, atol=1e-5)
