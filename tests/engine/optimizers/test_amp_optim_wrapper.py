"""The dinov3_mm AmpOptimWrapper trains in bf16 on a CPU-only machine."""
import pytest
import torch

from dinov3_mm.engine.optimizers import AmpOptimWrapper
from dinov3_mm.registry import OPTIM_WRAPPERS
from dinov3_mm.utils.cpu_bf16 import FORCE_ENV

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU-only behaviour')


def test_cpu_amp_autocasts_to_bf16_and_updates(monkeypatch):
    # where bf16 is emulated the wrapper falls back to fp32 unless forced
    # (tests/utils/test_cpu_bf16.py); here it is bf16 on any CPU
    monkeypatch.setenv(FORCE_ENV, 'force')
    model = torch.nn.Linear(4, 2)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='AmpOptimWrapper',
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert isinstance(wrapper, AmpOptimWrapper)
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(model.weight, before)
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    state['loss_scaler'] = {'scale': 1024.0}  # as saved by a CUDA run
    wrapper.load_state_dict(state)


def test_cpu_amp_rejects_fp16():
    model = torch.nn.Linear(4, 2)
    with pytest.raises(ValueError, match='bfloat16 only'):
        AmpOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            dtype='float16')
