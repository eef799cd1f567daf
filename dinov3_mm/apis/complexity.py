"""FLOPs and parameters of a model at a given input size.

Counted by mmengine's fvcore-style analyser (``mmengine.analysis``), which
traces one forward pass with ``torch.jit`` and counts one FLOP per
multiply-add of matrix products, convolutions and a few other ops. This
module adds a count for ``scaled_dot_product_attention`` (the attention of
our ViTs), which mmengine does not know.
"""
from collections import Counter
from typing import Any, Dict, List, Sequence, Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.analysis.print_helper import complexity_stats_table
from torch import nn

#: Ops that move or reshape data, not worth a warning when left uncounted.
_SILENT_OPS = ('aten::add', 'aten::sub', 'aten::mul', 'aten::div',
               'aten::gelu', 'aten::silu', 'aten::softmax', 'aten::sigmoid',
               'aten::pad', 'aten::constant_pad_nd', 'aten::neg', 'aten::cos',
               'aten::sin', 'aten::exp', 'aten::relu', 'aten::relu_',
               'aten::add_', 'aten::mul_', 'aten::rsub', 'aten::mean',
               'aten::sum', 'aten::max', 'aten::argmax', 'aten::flip',
               'aten::addcmul', 'aten::addcmul_', 'aten::clone',
               'aten::dropout', 'aten::feature_dropout', 'aten::meshgrid',
               'aten::arange', 'aten::abs', 'aten::sign', 'aten::log',
               'aten::pow', 'aten::sqrt', 'aten::rsqrt', 'aten::tanh',
               'aten::clamp', 'aten::floor', 'aten::ceil', 'aten::round')


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Multiply-adds of ``scaled_dot_product_attention(q, k, v)``:
    ``q @ k^T`` and ``attn @ v``, i.e. ``B * heads * Lq * Lk * (d + dv)``."""
    q_shape, k_shape, v_shape = (get_shape(value) for value in inputs[:3])
    *batch, len_q, dim = q_shape
    len_k, dim_v = k_shape[-2], v_shape[-1]
    batch_size = 1
    for size in batch:
        batch_size *= size
    return batch_size * len_q * len_k * (dim + dim_v)


def model_complexity(model: nn.Module,
                     inputs: Tuple[torch.Tensor, ...],
                     max_depth: int = 3) -> Dict[str, Any]:
    """Count FLOPs and parameters of ``model(*inputs)``.

    Args:
        model (nn.Module): The model, in eval mode; its ``forward`` is
            called with ``inputs`` only (our models: ``mode='tensor'``).
        inputs (tuple[Tensor]): The forward arguments.
        max_depth (int): Depth of the per-module table. Defaults to 3.

    Returns:
        dict: ``flops`` (int, multiply-adds), ``params`` (int), ``table``
        (str, per-module parameters and FLOPs) and ``uncounted`` (list of
        ``(op, calls)`` of compute ops without a FLOP formula).
    """
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    flops = analyzer.total()
    uncounted: Counter = analyzer.unsupported_ops()
    table = complexity_stats_table(flops=analyzer, max_depth=max_depth,
                                   show_param_shapes=False)
    return dict(flops=int(flops), params=int(parameter_count(model)['']),
                table=table,
                uncounted=sorted((op, n) for op, n in uncounted.items()
                                 if op not in _SILENT_OPS))


def format_count(value: float, units: Sequence[str] = ('', 'K', 'M', 'G',
                                                       'T')) -> str:
    """``1234567`` -> ``'1.23M'``."""
    value, unit = float(value), 0
    while abs(value) >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f'{value:.3g}{units[unit]}' if unit else f'{value:.0f}'
