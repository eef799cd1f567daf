"""Mixed-precision optimizer wrapper that also trains on the CPU (bf16)."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper
from torch import nn

from dinov3_mm.registry import OPTIM_WRAPPERS
from dinov3_mm.utils.cpu_bf16 import effective_autocast_dtype


def _accelerator_available() -> bool:
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(MMEngineAmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper``, usable without an accelerator.

    With CUDA (or NPU/MLU/MUSA) it is mmengine's wrapper unchanged. On a
    CPU-only machine it autocasts to bfloat16, which keeps fp32's exponent
    range and so needs no loss scaling; ``loss_scale`` is ignored there. A
    CPU without native bfloat16 (AVX2 only) would emulate it many times
    slower than fp32, so there the wrapper trains in fp32 and warns
    (:mod:`dinov3_mm.utils.cpu_bf16`; ``DINOV3_MM_CPU_BF16=force`` keeps bf16).

    Args:
        loss_scale (str | float | dict): See mmengine. Defaults to
            ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype; on the CPU only
            ``'bfloat16'`` (the default there) is accepted.
        use_fsdp (bool): See mmengine. Defaults to False.
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None,
                 use_fsdp: bool = False,
                 **kwargs):
        if _accelerator_available():
            super().__init__(
                loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp,
                **kwargs)
            return
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ValueError(
                f'Mixed precision on the CPU supports bfloat16 only, got '
                f"dtype={dtype!r}; use dtype='bfloat16' or drop --amp.")
        OptimWrapper.__init__(self, **kwargs)
        self.cast_dtype = effective_autocast_dtype('cpu', torch.bfloat16,
                                                   'AmpOptimWrapper')
        self.loss_scaler = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        if self.cast_dtype is None:  # fp32: a CPU without native bf16
            with OptimWrapper.optim_context(self, model):
                yield
            return
        with super().optim_context(model):
            yield

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.backward(self, loss, **kwargs)
        return super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.step(self, **kwargs)
        return super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None:
            state_dict = dict(state_dict)
            state_dict.pop('loss_scaler', None)  # resuming a GPU run
        super().load_state_dict(state_dict)
