"""Detections of an exported detector back in original-image coordinates.

NumPy only: the Triton postprocessing runs these (the file is copied into
the model repository next to ``image_ops.py``), and the tests compare them
with ``DINOv3DETR.predict``, which they mirror.

``meta`` is the served preprocessing's ``[ori_h, ori_w, top, bottom, left,
right]`` (see :func:`~dinov3_mm.utils.image_ops.preprocess_encoded`): the
image was resized to ``(H - top - bottom, W - left - right)`` and padded to
the network input ``(H, W)``.
"""
from typing import Sequence, Tuple

import numpy as np


def letterbox_transform(meta: Sequence[int], input_hw: Tuple[int, int]
                        ) -> Tuple[float, float, float, float]:
    """``(sx, sy, left, top)``: original -> network-input pixels is
    ``x * sx + left``, ``y * sy + top``."""
    ori_h, ori_w, top, bottom, left, right = (int(v) for v in meta)
    height, width = input_hw
    sx = (width - left - right) / ori_w
    sy = (height - top - bottom) / ori_h
    return sx, sy, float(left), float(top)


def boxes_to_original(boxes: np.ndarray, meta: Sequence[int],
                      input_hw: Tuple[int, int]) -> np.ndarray:
    """``(K, 4)`` xyxy network-input boxes to original pixels, clipped to
    the image."""
    sx, sy, left, top = letterbox_transform(meta, input_hw)
    ori_h, ori_w = int(meta[0]), int(meta[1])
    out = (np.asarray(boxes, np.float32) -
           np.array([left, top, left, top], np.float32)) / np.array(
               [sx, sy, sx, sy], np.float32)
    out[:, 0::2] = out[:, 0::2].clip(0, ori_w)
    out[:, 1::2] = out[:, 1::2].clip(0, ori_h)
    return out.astype(np.float32)


def _weights(size: int, scale: float, offset: float, canvas: int,
             grid: int) -> np.ndarray:
    """``(size, grid)`` bilinear weights of each original pixel centre on a
    ``grid``-cell map covering ``canvas`` input pixels; cells outside the map
    weigh zero (``grid_sample`` with zero padding, ``align_corners=False``).
    """
    pos = ((np.arange(size) + 0.5) * scale + offset) / canvas * grid - 0.5
    low = np.floor(pos).astype(np.int64)
    frac = (pos - low).astype(np.float32)
    weights = np.zeros((size, grid), np.float32)
    rows = np.arange(size)
    for cell, weight in ((low, 1 - frac), (low + 1, frac)):
        inside = (cell >= 0) & (cell < grid)
        weights[rows[inside], cell[inside]] += weight[inside]
    return weights


def masks_to_original(mask_logits: np.ndarray, meta: Sequence[int],
                      input_hw: Tuple[int, int],
                      threshold: float = 0.0) -> np.ndarray:
    """Low-resolution mask logits to uint8 0/1 masks of the original image.

    Each original pixel centre is mapped into the network input and its
    logit sampled bilinearly from the ``(h, w)`` grid covering the input,
    as ``DINOv3DETR.predict`` does; then thresholded.

    Args:
        mask_logits (np.ndarray): ``(K, h, w)``.
        meta (sequence[int]): ``[ori_h, ori_w, top, bottom, left, right]``.
        input_hw (tuple[int, int]): The network input size.
        threshold (float): Logit threshold. Defaults to 0.

    Returns:
        np.ndarray: uint8 ``(K, ori_h, ori_w)``.
    """
    ori_h, ori_w = int(meta[0]), int(meta[1])
    sx, sy, left, top = letterbox_transform(meta, input_hw)
    grid_h, grid_w = mask_logits.shape[-2:]
    wy = _weights(ori_h, sy, top, input_hw[0], grid_h)
    wx = _weights(ori_w, sx, left, input_hw[1], grid_w)
    out = np.empty((len(mask_logits), ori_h, ori_w), np.uint8)
    for i, logits in enumerate(np.asarray(mask_logits, np.float32)):
        out[i] = (wy @ logits @ wx.T) > threshold
    return out


def select_detections(scores: np.ndarray, threshold: float,
                      max_detections: int = 0) -> np.ndarray:
    """Indices of the detections scoring at least ``threshold`` (best
    first, at most ``max_detections`` when positive)."""
    keep = np.flatnonzero(np.asarray(scores) >= threshold)
    keep = keep[np.argsort(-np.asarray(scores)[keep], kind='stable')]
    return keep[:max_detections] if max_detections > 0 else keep


def mask_to_rle(mask: np.ndarray) -> dict:
    """A 2-D 0/1 mask as COCO uncompressed RLE (``size`` ``[h, w]`` and
    ``counts``: alternating run lengths of 0 and 1 in column-major order,
    starting with 0s); ``pycocotools.mask.frPyObjects`` reads it."""
    flat = np.asarray(mask, bool).ravel(order='F')
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return dict(size=[int(mask.shape[0]), int(mask.shape[1])],
                counts=[int(c) for c in counts])
