"""Cutting 2D and 2.5D slices out of volumes, and stacking them back."""
from typing import Sequence

import numpy as np


def check_axis(axis: int, ndim: int = 3) -> int:
    """``axis`` as a non-negative index of a ``ndim``-D volume.

    Raises:
        ValueError: out of range.
    """
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f'axis={axis} is not an axis of a {ndim}D volume '
                         f'(use 0..{ndim - 1}).')
    return int(axis) % ndim


def check_context(context: int) -> int:
    """Number of neighbouring slices on each side (>= 0)."""
    if int(context) != context or context < 0:
        raise ValueError(f'context={context} must be an integer >= 0 '
                         '(neighbouring slices on each side).')
    return int(context)


def context_indices(index: int, num_slices: int, context: int) -> np.ndarray:
    """Slice indices ``index - context .. index + context`` clamped to
    ``[0, num_slices - 1]`` (the edge slice repeats)."""
    offsets = np.arange(-context, context + 1)
    return np.clip(index + offsets, 0, num_slices - 1)


def extract_slice(volume: np.ndarray, axis: int, index: int,
                  context: int = 0) -> np.ndarray:
    """Slice ``index`` of ``volume`` along ``axis``.

    Args:
        volume (np.ndarray): 3D array.
        axis (int): Slicing axis.
        index (int): Slice index.
        context (int): Neighbours on each side stacked as channels (2.5D).
            Defaults to 0.

    Returns:
        np.ndarray: ``(H, W)`` with ``context=0``, else ``(H, W,
        2 * context + 1)`` with the centre slice in the middle channel; the
        two remaining axes keep their order. A copy.

    Raises:
        IndexError: ``index`` outside the volume.
    """
    axis = check_axis(axis, volume.ndim)
    context = check_context(context)
    num = volume.shape[axis]
    if not 0 <= index < num:
        raise IndexError(f'Slice {index} is outside the {num} slices along '
                         f'axis {axis}.')
    if context == 0:
        return np.ascontiguousarray(np.take(volume, int(index), axis=axis))
    picked = np.take(volume, context_indices(int(index), num, context),
                     axis=axis)
    return np.ascontiguousarray(np.moveaxis(picked, axis, -1))


def foreground_slices(labels: np.ndarray, axis: int,
                      ignore_index: int = 255,
                      background: Sequence[int] = (0, )) -> np.ndarray:
    """Per slice along ``axis``, whether it holds a foreground label (any
    value other than ``background`` and ``ignore_index``)."""
    axis = check_axis(axis, labels.ndim)
    empty = np.isin(labels, list(background) + [ignore_index])
    other = tuple(a for a in range(labels.ndim) if a != axis)
    return ~empty.all(axis=other)


def stack_slices(slices: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """Stack per-slice ``(H, W)`` predictions into a volume along
    ``axis`` (the inverse of :func:`extract_slice` with ``context=0``)."""
    return np.stack(list(slices), axis=check_axis(axis))
