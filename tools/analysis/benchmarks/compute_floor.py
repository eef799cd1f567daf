"""The compute floor of a step: its matrix FLOPs at the machine's GEMM peak.

A step cannot be faster than the time its matrix products (linear layers,
convolutions, attention; forward and backward) take at the best rate this
machine's matrix multiply reaches. Dividing a reference step's time by that
floor bounds the speed-up any implementation of the same computation can
show against it.
"""
import functools
import math
import time
from typing import Callable, Dict, List, Optional

import torch
from torch.utils.flop_counter import (FlopCounterMode,
                                      sdpa_backward_flop_count,
                                      sdpa_flop_count)

from .common import BENCH_DTYPES, sync

#: The columns :func:`floor_columns` adds to a benchmark row.
FLOOR_COLUMNS = ('step_gflop', 'gemm_gflop_s', 'floor_img_s', 'max_speedup')

#: Square GEMM side used to measure the peak: large enough to saturate the
#: matrix units of a CPU or a GPU.
PEAK_SIZE = {'cpu': 2048, 'cuda': 8192}


def _cpu_flash_attention_flops(query, key, value, *args, out_shape=None,
                               **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_flash_attention_backward_flops(grad_out, query, key, value, *args,
                                        out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def _convolution_backward_flops(grad_out, x, weight, bias_sizes, stride,
                                padding, dilation, transposed, output_padding,
                                groups, output_mask, out_shape=None) -> int:
    # Each gradient (input, weight) costs what the forward convolution does:
    # 2 FLOPs x output (input if transposed) elements x weight[1:] elements,
    # weight.shape[1] being the channels per group.
    forward = 2 * math.prod(x if transposed else grad_out) * math.prod(
        weight[1:])
    return forward * (int(output_mask[0]) + int(output_mask[1]))


#: torch's counter knows the CUDA attention kernels but not the CPU one, and
#: counts the weight gradient of a grouped (e.g. depthwise) convolution as if
#: it were dense (``groups`` times too many FLOPs).
_CORRECTED_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu:
    _cpu_flash_attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward:
    _cpu_flash_attention_backward_flops,
    torch.ops.aten.convolution_backward: _convolution_backward_flops,
}


def count_step_flops(step: Callable[[], object]) -> int:
    """FLOPs of the matrix products one call of ``step`` runs.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (two FLOPs
    per multiply-add of ``mm``/``addmm``/``bmm``, convolutions and their
    backward, scaled-dot-product attention forward and backward; grouped
    convolutions and the CPU attention kernel corrected); element-
    wise work, norms and the optimizer are not counted.

    Args:
        step (callable): One training (or inference) step; it runs once.

    Returns:
        int: The FLOPs of that step.
    """
    with FlopCounterMode(display=False,
                         custom_mapping=_CORRECTED_FLOPS) as counter:
        step()
    return counter.get_total_flops()


@functools.lru_cache(maxsize=None)
def matmul_peak_flops(device: str = 'cpu',
                      dtype: Optional[torch.dtype] = None,
                      repeats: int = 20) -> float:
    """The best FLOP/s of a large square ``torch.mm`` on ``device``.

    Measured once per process and arguments, so that all rows of a run
    share one peak; the fastest of many repeats, so that the floor is not
    set too low by a slow moment.

    Args:
        device (str): ``'cpu'`` or ``'cuda'``.
        dtype (torch.dtype, optional): The operands' dtype; ``None`` is
            float32.
        repeats (int): Timed multiplies after one warm-up; the fastest
            counts.

    Returns:
        float: FLOP/s (two per multiply-add).
    """
    size = PEAK_SIZE[torch.device(device).type]
    a = torch.randn(size, size, device=device, dtype=dtype or torch.float32)
    b = torch.randn_like(a)
    torch.mm(a, b)
    best = float('inf')
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def floor_columns(ref_step: Callable[[], object], ref_seconds: float,
                  batch_size: int, dtype: str,
                  device: str) -> Dict[str, object]:
    """The compute floor of a reference step, as benchmark row columns.

    Args:
        ref_step (callable): One step of the reference (runs once more,
            under the FLOP counter).
        ref_seconds (float): Its measured time per step.
        batch_size (int): Images per step.
        dtype (str): ``'fp32'``, ``'bf16'`` or ``'fp16'``: the dtype of the
            peak measurement.
        device (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        dict: ``step_gflop`` (matrix FLOPs per step), ``gemm_gflop_s``
        (the peak), ``floor_img_s`` (images/s at the floor) and
        ``max_speedup`` (reference time / floor time: the largest speed-up
        over the reference that the same computation allows).
    """
    flops = count_step_flops(ref_step)
    peak = matmul_peak_flops(device, BENCH_DTYPES[dtype])
    floor_seconds = flops / peak
    return dict(step_gflop=round(flops / 1e9, 2),
                gemm_gflop_s=round(peak / 1e9, 1),
                floor_img_s=round(batch_size / floor_seconds, 2),
                max_speedup=round(ref_seconds / floor_seconds, 3))


def floor_columns_in(rows: List[Dict[str, object]]) -> List[str]:
    """The :data:`FLOOR_COLUMNS` that any of ``rows`` has, for a table."""
    return [col for col in FLOOR_COLUMNS if any(col in row for row in rows)]
