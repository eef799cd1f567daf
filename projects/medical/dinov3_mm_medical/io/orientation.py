"""Reorienting voxel arrays to named axis codes (e.g. ``'RAS'``) and back.

With ``orientation='RAS'`` array axes 0, 1 and 2 run towards increasing
R, A and S world coordinates (the closest permutation and flips of the
stored grid, no resampling), so ``axis=2`` gives axial slices whatever the
storage order of the file was.
"""
from typing import Optional, Sequence, Tuple

import numpy as np


_WORLD_AXIS = dict(L=0, R=0, P=1, A=1, I=2, S=2)


def _check_codes(orientation: str) -> str:
    codes = str(orientation).upper()
    if len(codes) != 3 or any(c not in _WORLD_AXIS for c in codes) or sorted(
            _WORLD_AXIS[c] for c in codes) != [0, 1, 2]:
        raise ValueError(
            f'orientation={orientation!r}: expected three axis codes, one '
            "of L/R, P/A and I/S each, e.g. 'RAS' or 'LPS' (or None to keep "
            'the stored voxel order).')
    return codes


def orientation_transform(affine: np.ndarray,
                          orientation: Optional[str]) -> Optional[np.ndarray]:
    """nibabel ``ornt`` array taking the stored grid to ``orientation``
    (None when ``orientation`` is None)."""
    if orientation is None:
        return None
    from nibabel.orientations import (axcodes2ornt, io_orientation,
                                      ornt_transform)
    target = axcodes2ornt(tuple(_check_codes(orientation)))
    return ornt_transform(io_orientation(affine), target)


def reorient(data: np.ndarray, affine: np.ndarray,
             orientation: Optional[str]) -> Tuple[np.ndarray, np.ndarray]:
    """``(data, affine)`` permuted and flipped to ``orientation``.

    The returned data is a view of ``data`` when possible; the affine maps
    the new indices to the same world points.
    """
    transform = orientation_transform(affine, orientation)
    if transform is None:
        return data, affine
    from nibabel.orientations import apply_orientation, inv_ornt_aff
    new_affine = affine @ inv_ornt_aff(transform, data.shape)
    return apply_orientation(data, transform), new_affine


def undo_reorient(data: np.ndarray, affine: np.ndarray,
                  orientation: Optional[str]) -> np.ndarray:
    """Map an array on the reoriented grid back onto the stored grid whose
    affine is ``affine`` (the inverse of :func:`reorient`)."""
    transform = orientation_transform(affine, orientation)
    if transform is None:
        return data
    from nibabel.orientations import apply_orientation
    inverse = np.empty_like(transform)
    # reorient sends stored axis i to new axis transform[i, 0], flipped when
    # transform[i, 1] == -1; the inverse sends it back
    for i, (axis, flip) in enumerate(transform):
        inverse[int(axis)] = (i, flip)
    return np.ascontiguousarray(apply_orientation(data, inverse))


def reoriented_shape(shape: Sequence[int], affine: np.ndarray,
                     orientation: Optional[str]) -> Tuple[int, ...]:
    """Shape of a ``shape`` grid after :func:`reorient`."""
    transform = orientation_transform(affine, orientation)
    shape = tuple(int(s) for s in shape)
    if transform is None:
        return shape
    out = [0] * len(shape)
    for i, (axis, _) in enumerate(transform):
        out[int(axis)] = shape[i]
    return tuple(out)
