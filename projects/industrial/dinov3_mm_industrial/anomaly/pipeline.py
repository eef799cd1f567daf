"""Fit, score and evaluate a detector on MVTec-style categories.

For every category the memory bank is rebuilt from ``train/good``, every
test image is scored, and image AUROC (score vs. "not in test/good") and
pixel AUROC (map vs. ground-truth masks, both at the network input size)
are computed. Outputs under ``out_dir/<category>/``: ``scores.csv``,
``maps/<label>/<name>.png`` (8-bit anomaly maps at the original image
size, scaled by the category's score range) and ``overlays/`` (the map in
colour over the image); ``out_dir/metrics.json`` collects the numbers.
"""
import csv
import json
import math
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log

from dinov3_mm.datasets import read_image
from dinov3_mm.evaluation.functional import average_precision, binary_auroc
from ..operating_point import best_f1, threshold_sweep
from .detector import DINOv3PatchCore
from .mvtec import (Category, find_categories, load_category, load_resized,
                    read_mask)


def check_img_size(detector: DINOv3PatchCore, img_size: int) -> None:
    """Raise unless ``img_size`` is a positive multiple of the patch size."""
    patch = int(getattr(detector.backbone, 'patch_size', 1))
    if img_size <= 0 or img_size % patch:
        raise ValueError(f'img_size={img_size} must be a positive multiple of '
                         f'the backbone patch size {patch}.')


def image_batches(paths: Sequence[str], img_size: int, batch_size: int
                  ) -> Iterator[Tuple[torch.Tensor, List[Tuple[int, int]]]]:
    """Yield uint8 ``(B, 3, S, S)`` tensors and the original sizes."""
    for start in range(0, len(paths), batch_size):
        images, shapes = load_resized(paths[start:start + batch_size],
                                      img_size)
        yield torch.from_numpy(images).permute(0, 3, 1, 2), shapes


def _resized_mask(mask_path: Optional[str], image_path: str,
                  shape: Tuple[int, int], img_size: int) -> np.ndarray:
    if mask_path is None:
        return np.zeros((img_size, img_size), bool)
    mask = read_mask(mask_path, image_path, shape).astype(np.uint8)
    return cv2.resize(mask, (img_size, img_size),
                      interpolation=cv2.INTER_NEAREST) > 0


def score_category(detector: DINOv3PatchCore,
                   category: Category,
                   img_size: int,
                   batch_size: int = 8,
                   pixel_metrics: bool = True) -> dict:
    """Fit on the category's normal images and score its test images.

    Args:
        detector (DINOv3PatchCore): The detector (refitted here).
        category (Category): Files from :func:`load_category`.
        img_size (int): Square network input side.
        batch_size (int): Images per forward pass. Defaults to 8.
        pixel_metrics (bool): Read masks and compute pixel AUROC.
            Defaults to True.

    Returns:
        dict: ``metrics`` (image/pixel AUROC and AP, best-F1 threshold,
        counts), ``scores`` ``(N,)``, ``labels`` (bool ``(N,)``), ``maps``
        ``(N, S, S)`` and ``shapes`` (original sizes).
    """
    check_img_size(detector, img_size)
    bank = detector.fit(images for images, _ in image_batches(
        category.train, img_size, batch_size))
    test = category.test
    maps, scores, shapes, masks = [], [], [], []
    paths = [t.path for t in test]
    for start, (images, sizes) in zip(
            range(0, len(test), batch_size),
            image_batches(paths, img_size, batch_size)):
        out = detector.predict(images)
        maps.append(out['maps'])
        scores.append(out['scores'])
        shapes += sizes
        if pixel_metrics:
            for item, size in zip(test[start:start + batch_size], sizes):
                masks.append(_resized_mask(item.mask_path, item.path, size,
                                           img_size))
    maps_t, scores_t = torch.cat(maps), torch.cat(scores)
    labels = torch.tensor([t.is_anomaly for t in test])
    metrics = dict(
        num_train=len(category.train), num_test=len(test),
        num_anomalous=int(labels.sum()), bank_size=bank['bank_size'],
        image_auroc=binary_auroc(scores_t, labels),
        image_ap=average_precision(scores_t, labels))
    f1 = best_f1(threshold_sweep(scores_t, labels))
    metrics.update(image_best_f1=f1['f1'], image_threshold=f1['threshold'])
    if pixel_metrics:
        truth = torch.from_numpy(np.stack(masks))
        metrics['pixel_auroc'] = binary_auroc(maps_t.flatten(),
                                              truth.flatten())
    for key in ('image_auroc', 'pixel_auroc'):
        if key in metrics and math.isnan(metrics[key]):
            print_log(f'{category.name}: {key} is undefined (needs normal and '
                      'anomalous test data).', logger='current', level=30)
    return dict(metrics=metrics, scores=scores_t, labels=labels, maps=maps_t,
                shapes=shapes)


def write_category_outputs(category: Category, result: dict, out_dir: str,
                           save_maps: bool = True) -> None:
    """Write ``scores.csv`` and (optionally) map and overlay PNGs."""
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'scores.csv'), 'w', newline='',
              encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'label', 'is_anomaly', 'score'])
        for item, score in zip(category.test, result['scores'].tolist()):
            writer.writerow([
                osp.relpath(item.path, category.root), item.label,
                int(item.is_anomaly), f'{score:.6f}'
            ])
    if not save_maps:
        return
    maps = result['maps']
    lo, hi = float(maps.min()), float(maps.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    for item, amap, (h, w) in zip(category.test, maps, result['shapes']):
        full = F.interpolate(amap[None, None], size=(h, w), mode='bilinear',
                             align_corners=False)[0, 0]
        gray = ((full - lo) * scale).clamp(0, 255).round().byte().numpy()
        name = osp.splitext(osp.basename(item.path))[0] + '.png'
        for folder in ('maps', 'overlays'):
            os.makedirs(osp.join(out_dir, folder, item.label), exist_ok=True)
        cv2.imwrite(osp.join(out_dir, 'maps', item.label, name), gray)
        bgr = cv2.cvtColor(read_image(item.path), cv2.COLOR_RGB2BGR)
        heat = cv2.applyColorMap(gray, cv2.COLORMAP_JET)
        cv2.imwrite(osp.join(out_dir, 'overlays', item.label, name),
                    cv2.addWeighted(bgr, 0.5, heat, 0.5, 0))


def _mean(values: List[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def run_anomaly_detection(detector: DINOv3PatchCore,
                          data_root: str,
                          img_size: int,
                          out_dir: Optional[str] = None,
                          categories: Optional[Sequence[str]] = None,
                          batch_size: int = 8,
                          pixel_metrics: bool = True,
                          save_maps: bool = True) -> Dict[str, dict]:
    """Evaluate ``detector`` on every (or the named) category of a folder.

    Args:
        detector (DINOv3PatchCore): A built detector (weights loaded).
        data_root (str): A category folder or a folder of them.
        img_size (int): Square input side, a multiple of the patch size.
        out_dir (str, optional): Where to write the outputs (see the module
            docstring). Defaults to None (nothing written).
        categories (Sequence[str], optional): Names to evaluate. Defaults to
            all found.
        batch_size (int): Images per forward pass. Defaults to 8.
        pixel_metrics (bool): Need masks and compute pixel AUROC. Defaults
            to True.
        save_maps (bool): Write the map and overlay PNGs. Defaults to True.

    Returns:
        dict: ``{category: metrics}`` plus ``'mean'`` over the categories.
    """
    found = dict(find_categories(data_root))
    if categories:
        unknown = [c for c in categories if c not in found]
        if unknown:
            raise FileNotFoundError(
                f'Categories {unknown} not found under {data_root!r}; found '
                f'{sorted(found)}.')
        found = {c: found[c] for c in categories}
    results: Dict[str, dict] = {}
    for name, folder in found.items():
        category = load_category(folder, name, require_masks=pixel_metrics)
        result = score_category(detector, category, img_size, batch_size,
                                pixel_metrics)
        results[name] = result['metrics']
        if out_dir:
            write_category_outputs(category, result, osp.join(out_dir, name),
                                   save_maps)
        print_log(f'{name}: ' + ', '.join(
            f'{k}={v:.4f}' for k, v in result['metrics'].items()
            if k.endswith('auroc')), logger='current')
    results['mean'] = {
        key: _mean([m[key] for m in results.values() if key in m])
        for key in ('image_auroc', 'pixel_auroc', 'image_ap')
        if any(key in m for m in results.values())
    }
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, 'metrics.json'), 'w',
                  encoding='utf-8') as f:
            json.dump({k: {kk: (None if isinstance(vv, float) and
                                math.isnan(vv) else vv)
                           for kk, vv in v.items()}
                       for k, v in results.items()}, f, indent=1)
    return results
