"""Linear layers with a oneDNN fast path for CPU inference.

Outside autograd (``torch.no_grad``/``inference_mode``, or frozen weights and
inputs), a linear layer on a CPU with AVX-512 runs through oneDNN's fused
linear-pointwise kernel, which is markedly faster than ``addmm`` there and
applies the exact (erf) GELU in the same pass. Under CPU autocast the weights
are cast once, reordered into oneDNN's blocked layout and cached per weight
version (like autocast's own cache, but across autocast regions). Anything
else, fp32 on an AVX2-only CPU included, takes ``F.linear``.
"""
import functools
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinov3_mm.utils.cpu_bf16 import cpu_has_native_bf16

_FAST_DTYPES = (torch.float32, torch.bfloat16)


def _onednn_available() -> bool:
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, '_linear_pointwise')
            and hasattr(torch.ops.mkldnn, '_reorder_linear_weight'))


ONEDNN_LINEAR = _onednn_available()


@functools.lru_cache(maxsize=None)
def onednn_fp32_is_faster() -> bool:
    """Whether oneDNN's fp32 linear kernel beats ``addmm`` on this CPU.

    Measured on this project's machines (AMD EPYC, where MKL's ``addmm``
    does not use AVX-512): with AVX-512 the linear layers of ViT inference
    ran about 2x faster through oneDNN; on an AVX2-only CPU ViT-S/16
    inference ran 16 % slower through it (batch 8: 11.5 against 13.7
    img/s). See docs/benchmarks.md.
    """
    return torch.backends.cpu.get_cpu_capability() == 'AVX512'


def _compute_dtype(x: Tensor) -> torch.dtype:
    if torch.is_autocast_enabled('cpu'):
        return torch.get_autocast_dtype('cpu')
    return x.dtype


def _fast_path(x: Tensor, weight: Tensor) -> bool:
    if not ONEDNN_LINEAR or x.device.type != 'cpu':
        return False
    if torch.jit.is_tracing():  # ONNX export: no symbolic for the fused op
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False
    dtype = _compute_dtype(x)
    if dtype == torch.bfloat16 and not cpu_has_native_bf16():
        return False  # oneDNN has no bf16 kernels for this CPU
    if dtype == torch.float32 and not onednn_fp32_is_faster():
        return False
    return x.dtype in _FAST_DTYPES and dtype in _FAST_DTYPES


def _cached(layer: nn.Module, name: str, tensor: Tensor, dtype: torch.dtype,
            make) -> Tensor:
    """``make()`` (a cast copy of ``tensor``), kept until the tensor changes."""
    key = (dtype, tensor.data_ptr(), tensor._version)
    cache = layer.__dict__.setdefault('_cast_cache', {})
    hit = cache.get(name)
    if hit is None or hit[0] != key:
        hit = (key, make())
        cache[name] = hit
    return hit[1]


def linear(x: Tensor,
           layer: nn.Linear,
           bias: Optional[Tensor] = None,
           gelu: bool = False) -> Tensor:
    """``layer(x)`` (optionally followed by exact GELU), fast on the CPU.

    Args:
        x (Tensor): Input ``(..., in_features)``.
        layer (nn.Module): An ``nn.Linear`` supplying the weight (and the
            bias unless given); any other module (e.g. a LoRA wrapper) is
            simply called.
        bias (Tensor, optional): Bias to use instead of ``layer.bias``.
        gelu (bool): Apply ``F.gelu`` (erf form) to the output. Defaults to
            False.

    Returns:
        Tensor: Same values as ``F.linear`` (and ``F.gelu``) within rounding;
        under CPU autocast in the autocast dtype, as ``F.linear`` would be.
    """
    if not isinstance(layer, nn.Linear):
        # a wrapper such as a peft LoRA layer: its forward adds the adapter
        out = layer(x)
        return F.gelu(out) if gelu else out
    bias = layer.bias if bias is None else bias
    if not _fast_path(x, layer.weight):
        out = F.linear(x, layer.weight, bias)
        return F.gelu(out) if gelu else out
    dtype = _compute_dtype(x)
    weight = layer.weight
    if weight.dtype != dtype:
        # oneDNN's blocked layout for the cast copy; the hint is the row count
        rows = x.numel() // x.shape[-1]
        weight = _cached(
            layer, 'weight', weight, dtype,
            lambda: torch.ops.mkldnn._reorder_linear_weight(
                layer.weight.detach().to(dtype), rows))
    if bias is not None and bias.dtype != dtype:
        bias = (_cached(layer, 'bias', bias, dtype,
                        lambda: layer.bias.detach().to(dtype))
                if bias is layer.bias else bias.to(dtype))
    attr, algorithm = ('gelu', 'none') if gelu else ('none', '')
    return torch.ops.mkldnn._linear_pointwise(
        x.to(dtype), weight, bias, attr, [], algorithm)


class Linear(nn.Linear):
    """``nn.Linear`` that takes the oneDNN path of :func:`linear` when it can."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self)
