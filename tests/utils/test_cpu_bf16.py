"""bf16 autocast only where the CPU computes bf16 natively; fp32 elsewhere."""
import importlib
import warnings
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

from dinov3_mm.engine.optimizers import AmpOptimWrapper
from dinov3_mm.models.layers.linear import Linear
from dinov3_mm.utils import cpu_bf16

# the module, not the function of the same name that the package exports
linear_module = importlib.import_module('dinov3_mm.models.layers.linear')


@contextmanager
def warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        yield


@pytest.fixture
def native(monkeypatch):
    """Set whether the CPU 'has' native bf16; forget earlier warnings."""
    monkeypatch.delenv(cpu_bf16.FORCE_ENV, raising=False)
    cpu_bf16._warn_once.cache_clear()

    def set_native(value: bool):
        monkeypatch.setattr(cpu_bf16, 'cpu_has_native_bf16', lambda: value)
        monkeypatch.setattr(linear_module, 'cpu_has_native_bf16',
                            lambda: value)

    yield set_native
    cpu_bf16._warn_once.cache_clear()


def test_detection_predicts_whether_onednn_takes_bf16():
    """What the detection is for: oneDNN's bf16 weight reorder (our linear
    fast path) works exactly where it says bf16 is native."""
    weight = torch.randn(8, 4).bfloat16()
    if cpu_bf16.cpu_has_native_bf16():
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 2)
        assert packed.dtype == torch.bfloat16
    else:
        with pytest.raises(RuntimeError, match='bf16 path needs'):
            torch.ops.mkldnn._reorder_linear_weight(weight, 2)


def test_parse_dtype():
    assert cpu_bf16.parse_dtype('bfloat16') is torch.bfloat16
    assert cpu_bf16.parse_dtype(torch.float16) is torch.float16
    assert cpu_bf16.parse_dtype(None) is None
    with pytest.raises(ValueError, match="Unknown autocast dtype 'bf17'"):
        cpu_bf16.parse_dtype('bf17')


def test_emulated_bf16_becomes_fp32_with_one_warning(native):
    native(False)
    with pytest.warns(RuntimeWarning, match='probe: bfloat16 autocast '
                      'requested, but this CPU has no native bfloat16'):
        assert cpu_bf16.effective_autocast_dtype('cpu', 'bfloat16',
                                                 'probe') is None
    with warnings_as_errors():  # warned once per caller
        assert cpu_bf16.effective_autocast_dtype('cpu', torch.bfloat16,
                                                 'probe') is None
    # only bf16 on the CPU is replaced
    assert cpu_bf16.effective_autocast_dtype('cuda', 'bfloat16') is \
        torch.bfloat16
    assert cpu_bf16.effective_autocast_dtype('cpu', None) is None
    with cpu_bf16.autocast_or_fp32('cpu', 'bfloat16', 'probe'):
        assert not torch.is_autocast_enabled('cpu')


def test_force_keeps_bf16(native, monkeypatch):
    native(False)
    monkeypatch.setenv(cpu_bf16.FORCE_ENV, 'force')
    assert cpu_bf16.effective_autocast_dtype('cpu', 'bfloat16') is \
        torch.bfloat16


def test_native_bf16_autocasts(native):
    native(True)
    with warnings_as_errors():
        with cpu_bf16.autocast_or_fp32('cpu', 'bfloat16'):
            assert torch.is_autocast_enabled('cpu')
            assert torch.get_autocast_dtype('cpu') is torch.bfloat16


def test_amp_optim_wrapper_trains_in_fp32_without_native_bf16(native):
    native(False)
    model = torch.nn.Linear(4, 2)
    with pytest.warns(RuntimeWarning, match='AmpOptimWrapper'):
        wrapper = AmpOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper.cast_dtype is None
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        assert not torch.is_autocast_enabled('cpu')
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.float32
    wrapper.update_params(out.pow(2).mean())
    assert not torch.equal(model.weight, before)


def test_linear_without_native_bf16_takes_f_linear(native):
    """oneDNN's bf16 weight reorder raises on such a CPU; F.linear works."""
    native(False)
    layer = Linear(8, 4)
    x = torch.randn(3, 8)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
        expected = F.linear(x, layer.weight, layer.bias)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected)
