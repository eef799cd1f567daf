"""Parity of an exported detector: PyTorch vs onnxruntime detections.

Top-k lists can swap neighbours whose scores differ by less than the
numeric noise, so detections are compared as matched pairs: each PyTorch
detection is paired with the onnxruntime detection of the same image and
label, scoring within ``score_tol`` of it, that overlaps it most (the one
at the same rank first). Entries of the report's ``outputs``:

- ``scores``: ``max_abs_diff`` of the sorted score lists;
- ``labels``: ``agreement``, the fraction of PyTorch detections with a
  partner;
- ``boxes``: ``max_abs_diff`` (pixels) and ``mean_iou`` / ``min_iou`` of
  the pairs;
- ``masks`` (mask models): ``max_abs_diff`` of the pairs' logits and
  ``mean_iou`` / ``min_iou`` of the masks (logit > 0).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np

#: Smallest mean box / mask IoU of matched pairs for a passing fp32 export.
MIN_IOU = 0.99


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes, ``(N, M)``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12),
                    (np.abs(a[:, None] - b[None]).max(-1) == 0) * 1.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def match_detections(ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
                     score_tol: float) -> List[Tuple[int, int, int]]:
    """``(image, ref_index, got_index)`` of every matched pair."""
    pairs = []
    for b in range(ref['scores'].shape[0]):
        used = set()
        ious = box_iou(ref['boxes'][b], got['boxes'][b])
        for i in range(ref['scores'].shape[1]):
            same = ((got['labels'][b] == ref['labels'][b, i]) &
                    (np.abs(got['scores'][b] - ref['scores'][b, i]) <=
                     score_tol))
            candidates = [j for j in np.flatnonzero(same) if j not in used]
            if not candidates:
                continue
            best = (i if i in candidates else
                    max(candidates, key=lambda j: ious[i, j]))
            used.add(best)
            pairs.append((b, i, best))
    return pairs


def detection_parity(ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray],
                     atol: float, min_agreement: Optional[float] = None,
                     min_iou: Optional[float] = MIN_IOU
                     ) -> Tuple[dict, List[str]]:
    """Compare detection outputs by name; the report entries and failures.

    Args:
        ref (dict): PyTorch ``boxes``, ``scores``, ``labels`` (, ``masks``).
        got (dict): onnxruntime outputs of the same names.
        atol (float): Score tolerance (also the matching tolerance, at least
            1e-6); boxes are allowed ``atol`` times the input side in
            pixels, mask logits ``atol`` times their largest magnitude.
        min_agreement (float, optional): Smallest fraction of matched
            detections; 1.0 when None.
        min_iou (float, optional): Smallest mean box and mask IoU of the
            pairs; not checked when None.

    Returns:
        tuple: ``outputs`` (per name) and a list of failure messages.
    """
    failures: List[str] = []
    outputs: dict = {}
    for name, value in ref.items():
        if value.shape != got[name].shape:
            failures.append(f'{name}: shape {got[name].shape} != '
                            f'{value.shape}')
    if failures:
        return {n: dict(shape=list(v.shape)) for n, v in ref.items()}, \
            failures
    score_diff = float(np.abs(np.sort(ref['scores'], 1) -
                              np.sort(got['scores'], 1)).max(initial=0.0))
    outputs['scores'] = dict(shape=list(ref['scores'].shape),
                             max_abs_diff=score_diff)
    pairs = match_detections(ref, got, max(atol, 1e-6))
    total = int(ref['scores'].size)
    agreement = len(pairs) / total if total else 1.0
    outputs['labels'] = dict(shape=list(ref['labels'].shape),
                             agreement=agreement)
    b, i, j = (np.array(v, np.int64) for v in zip(*pairs)) if pairs else \
        (np.zeros(0, np.int64), ) * 3
    ref_boxes, got_boxes = ref['boxes'][b, i], got['boxes'][b, j]
    ious = np.array([box_iou(r[None], g[None])[0, 0]
                     for r, g in zip(ref_boxes, got_boxes)])
    outputs['boxes'] = dict(
        shape=list(ref['boxes'].shape),
        max_abs_diff=float(np.abs(ref_boxes - got_boxes).max(initial=0.0)),
        mean_iou=float(ious.mean()) if ious.size else 1.0,
        min_iou=float(ious.min()) if ious.size else 1.0)
    if 'masks' in ref:
        ref_masks, got_masks = ref['masks'][b, i], got['masks'][b, j]
        mask_ious = np.array([mask_iou(r > 0, g > 0)
                              for r, g in zip(ref_masks, got_masks)])
        outputs['masks'] = dict(
            shape=list(ref['masks'].shape),
            max_abs_diff=float(np.abs(ref_masks - got_masks).max(
                initial=0.0)),
            mean_iou=float(mask_ious.mean()) if mask_ious.size else 1.0,
            min_iou=float(mask_ious.min()) if mask_ious.size else 1.0)
    required = 1.0 if min_agreement is None else min_agreement
    if score_diff > atol:
        failures.append(f'scores: max abs diff {score_diff:.3g} > atol '
                        f'{atol}')
    if agreement < required:
        failures.append(f'labels: {agreement:.4f} of the detections have a '
                        f'partner (same label, score within {atol}) < '
                        f'{required}')
    if min_iou is not None:
        for name in ('boxes', 'masks'):
            entry = outputs.get(name)
            if entry is not None and entry['mean_iou'] < min_iou:
                failures.append(f"{name}: mean IoU of matched detections "
                                f"{entry['mean_iou']:.4f} < {min_iou}")
    return outputs, failures
