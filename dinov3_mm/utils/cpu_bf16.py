"""Whether this CPU runs bfloat16 natively, and autocast choices that follow.

oneDNN computes bfloat16 with AVX-512 (BW/VL/DQ, plus AVX512-BF16 and AMX
where present) or AVX-NE-CONVERT. Without them (an AVX2-only CPU) PyTorch
emulates bfloat16 matrix products and convolutions in reference loops: a
ViT-S/16 training step took 100 s under bf16 autocast against 3.5 s in fp32
on such a machine. Autocast to bfloat16 on such a CPU is therefore replaced
by fp32, with a warning, unless ``DINOV3_MM_CPU_BF16=force`` asks for it.
"""
import functools
import os
import warnings
from typing import Optional, Union

import torch

#: Environment variable: ``force`` autocasts to bf16 even where it is emulated.
FORCE_ENV = 'DINOV3_MM_CPU_BF16'


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether oneDNN computes bfloat16 on this CPU (torch's own test)."""
    if not torch.backends.mkldnn.is_available():
        return False
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _forced() -> bool:
    return os.environ.get(FORCE_ENV, '').strip().lower() == 'force'


@functools.lru_cache(maxsize=None)
def _warn_once(what: str) -> None:
    warnings.warn(
        f'{what}: bfloat16 autocast requested, but this CPU has no native '
        f'bfloat16 (oneDNN needs AVX-512 or AVX-NE-CONVERT; PyTorch would '
        f'emulate it, about 30x slower than fp32 here). Running in fp32 '
        f'instead; set {FORCE_ENV}=force to autocast anyway.',
        RuntimeWarning, stacklevel=3)


def parse_dtype(dtype: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    """``'bfloat16'`` (or a ``torch.dtype``) -> ``torch.dtype``; None stays.

    Raises:
        ValueError: The name is not a torch dtype.
    """
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f'Unknown autocast dtype {dtype!r}; use e.g. '
                         "'bfloat16', 'float16' or None.")
    return resolved


def effective_autocast_dtype(device_type: str,
                             dtype: Union[None, str, torch.dtype],
                             what: str = 'autocast') -> Optional[torch.dtype]:
    """The autocast dtype to use on ``device_type``: None means fp32.

    bfloat16 on a CPU without native bfloat16 becomes None (fp32), with one
    warning per ``what``, unless :data:`FORCE_ENV` is ``force``. Everything
    else is returned as given.

    Args:
        device_type (str): ``'cpu'``, ``'cuda'``, ...
        dtype (str | torch.dtype, optional): Requested autocast dtype.
        what (str): Who asks, named in the warning.

    Returns:
        torch.dtype | None: The dtype to autocast to, or None for none.
    """
    dtype = parse_dtype(dtype)
    if (dtype == torch.bfloat16 and device_type == 'cpu'
            and not cpu_has_native_bf16() and not _forced()):
        _warn_once(what)
        return None
    return dtype


def autocast_or_fp32(device_type: str,
                     dtype: Union[None, str, torch.dtype],
                     what: str = 'autocast') -> torch.autocast:
    """``torch.autocast`` to :func:`effective_autocast_dtype`'s choice.

    Disabled (fp32) when that is None: no dtype given, or bf16 on a CPU
    without native bf16.
    """
    dtype = effective_autocast_dtype(device_type, dtype, what)
    return torch.autocast(device_type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)
