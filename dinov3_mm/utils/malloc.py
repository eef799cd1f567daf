"""Keep freed CPU memory in the process for the next step or batch.

glibc's malloc serves blocks above its mmap threshold (at most 32 MiB) with
fresh ``mmap`` pages and returns the top of its heap to the system once
more than a trim threshold is free. A CPU training step allocates and frees
the same large activations every iteration, so the kernel faults in and
zeroes them again each time: on 2 cores a ConvNeXt-T step (batch 16, 224 px)
caused about 300 000 page faults and spent 13 % of its CPU time in the
kernel.
:func:`retain_freed_memory` makes malloc take every block from its heap and
keep freed memory there, as PyTorch's CUDA caching allocator does on a GPU.
Peak memory stays what the step needs; the process just does not hand it
back between steps. Inference passes gain the same way.
"""
import ctypes
import functools
import os
import sys

#: ``DINOV3_MM_MALLOC=default`` leaves malloc as it is.
ENV = 'DINOV3_MM_MALLOC'

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def _glibc():
    """The process's C library when it is glibc with ``mallopt``, else None."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return libc


@functools.lru_cache(maxsize=None)
def retain_freed_memory() -> bool:
    """Have glibc's malloc reuse freed memory instead of returning it.

    Disables ``mmap`` for large blocks (``M_MMAP_MAX=0``) and sets the trim
    threshold to 2 GiB - 1, the largest ``mallopt`` accepts. Applies to the
    allocations made afterwards, in this process and in the processes it
    forks (data loader workers). Call it once, before training or
    inference starts (``tools/train.py``, ``test.py`` and ``infer.py`` do).

    Returns:
        bool: Whether the setting was applied: False where the C library is
        not glibc, or with ``DINOV3_MM_MALLOC=default``.
    """
    if os.environ.get(ENV, '').strip().lower() == 'default':
        return False
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)
                and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
