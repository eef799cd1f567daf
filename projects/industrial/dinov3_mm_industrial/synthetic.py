"""Procedurally drawn inspection data: textured surfaces with defects.

Two layouts are written, both from the same drawing functions:

* :func:`write_mvtec_like` - the MVTec AD folder layout used by the anomaly
  detector: ``<root>/<category>/train/good/*.png``, ``test/good/*.png``,
  ``test/<defect>/*.png`` and ``ground_truth/<defect>/<name>_mask.png``.
* :func:`write_defect_classification` - an imbalanced ImageFolder for the
  defect classifier: ``<root>/{train,val,test}/{good,scratch,blob}/*.png``.
* :func:`write_defect_segmentation` - mmseg-style folders for defect
  segmentation, ``<root>/{img_dir,ann_dir}/{train,val}/*.png`` with index
  masks (:data:`SEG_CLASSES`); defects cover about 1 % of the pixels.

A category fixes the texture (its frequencies, orientation and colour);
images of one category differ in phase, exposure and sensor noise, as
photographs of one product line do. Defects are thin scratches (lighter or
darker curved lines) and stains (irregular blobs); their masks are exact.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

CATEGORIES: Dict[str, dict] = {
    # woven cloth: two crossing gratings
    'fabric': dict(kind='weave', period=(7.0, 9.0), angle=0.3,
                   colour=(150, 120, 90), amplitude=28.0),
    # brushed metal: streaks along one direction
    'metal': dict(kind='brushed', period=(0.0, 0.0), angle=0.0,
                  colour=(140, 140, 150), amplitude=22.0),
}
DEFECTS = ('scratch', 'blob')
SEG_CLASSES = ('background', ) + DEFECTS


def _check_size(size: int) -> None:
    if size < 32:
        raise ValueError(f'size={size} is too small to draw defects; use '
                         'at least 32 pixels.')


def draw_surface(size: int, category: str,
                 rng: np.random.Generator) -> np.ndarray:
    """A defect-free RGB uint8 ``(size, size, 3)`` surface of ``category``.

    Args:
        size (int): Image side in pixels.
        category (str): A key of :data:`CATEGORIES`.
        rng (np.random.Generator): Source of the per-image variation.

    Returns:
        np.ndarray: The image.
    """
    _check_size(size)
    if category not in CATEGORIES:
        raise ValueError(f'Unknown category {category!r}; expected one of '
                         f'{sorted(CATEGORIES)}.')
    spec = CATEGORIES[category]
    scale = size / 128.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    angle = spec['angle'] + rng.normal(0, 0.02)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    if spec['kind'] == 'weave':
        pu, pv = (p * scale for p in spec['period'])
        pattern = (np.sin(2 * np.pi * u / pu + rng.uniform(0, 2 * np.pi)) +
                   np.sin(2 * np.pi * v / pv + rng.uniform(0, 2 * np.pi)))
        pattern /= 2
    else:
        streaks = rng.normal(0, 1, (size, size))
        streaks = cv2.GaussianBlur(streaks, (0, 0), sigmaX=8 * scale,
                                   sigmaY=0.6 * scale)
        pattern = np.clip(streaks / (streaks.std() + 1e-8), -2, 2) / 2
    exposure = rng.uniform(0.92, 1.08)
    colour = np.asarray(spec['colour'], np.float64) * exposure
    image = colour + spec['amplitude'] * pattern[..., None]
    image += rng.normal(0, 5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def add_scratch(image: np.ndarray, rng: np.random.Generator,
                contrast: float = 1.0) -> np.ndarray:
    """Draw a thin curved scratch into ``image`` (in place).

    Args:
        image (np.ndarray): RGB uint8 ``(S, S, 3)``.
        rng (np.random.Generator): Source of randomness.
        contrast (float): Scales the brightness change. Defaults to 1.

    Returns:
        np.ndarray: The uint8 ``(S, S)`` mask, 255 on the scratch.
    """
    size = image.shape[0]
    length = rng.uniform(0.3, 0.55) * size
    angle = rng.uniform(0, np.pi)
    centre = rng.uniform(0.3, 0.7, size=2) * size
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    t = np.linspace(-0.5, 0.5, 24)[:, None]
    bend = rng.uniform(-0.15, 0.15) * length * (1 - 4 * t**2)
    points = centre + t * length * direction + bend * normal
    points = np.round(points).astype(np.int32).reshape(-1, 1, 2)
    thickness = max(1, int(round(size / 64)))
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.polylines(mask, [points], False, 255, thickness)
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    delta = sign * contrast * rng.uniform(70, 100)
    inside = mask > 0
    image[inside] = np.clip(image[inside].astype(np.float64) + delta, 0,
                            255).astype(np.uint8)
    return mask


def add_blob(image: np.ndarray, rng: np.random.Generator,
             contrast: float = 1.0) -> np.ndarray:
    """Paint an irregular stain into ``image`` (in place).

    Args:
        image (np.ndarray): RGB uint8 ``(S, S, 3)``.
        rng (np.random.Generator): Source of randomness.
        contrast (float): Opacity of the stain (clipped to 1). Defaults to 1.

    Returns:
        np.ndarray: The uint8 ``(S, S)`` mask, 255 on the stain.
    """
    size = image.shape[0]
    mask = np.zeros(image.shape[:2], np.uint8)
    centre = rng.uniform(0.3, 0.7, size=2) * size
    for _ in range(int(rng.integers(3, 6))):
        offset = rng.normal(0, 0.04 * size, size=2)
        radius = rng.uniform(0.035, 0.07) * size
        cx, cy = np.round(centre + offset).astype(int)
        cv2.circle(mask, (int(cx), int(cy)), max(2, int(radius)), 255, -1)
    stain = rng.uniform(20, 70, size=3)
    opacity = min(1.0, 0.75 * contrast)
    inside = mask > 0
    mixed = (1 - opacity) * image[inside] + opacity * stain
    image[inside] = np.clip(mixed, 0, 255).astype(np.uint8)
    return mask


DEFECT_DRAWERS = {'scratch': add_scratch, 'blob': add_blob}


def draw_defect(image: np.ndarray, defect: str, rng: np.random.Generator,
                contrast: float = 1.0) -> np.ndarray:
    """Add a ``defect`` of :data:`DEFECTS` to ``image``; return its mask."""
    if defect not in DEFECT_DRAWERS:
        raise ValueError(f'Unknown defect {defect!r}; expected one of '
                         f'{DEFECTS}.')
    return DEFECT_DRAWERS[defect](image, rng, contrast)


def _write_rgb(path: str, image: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f'Could not write {path!r}.')


def _write_mask(path: str, mask: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, mask):
        raise OSError(f'Could not write {path!r}.')


def write_mvtec_like(root: str,
                     categories: Sequence[str] = ('fabric', ),
                     num_train: int = 20,
                     num_test_good: int = 8,
                     num_test_defect: int = 6,
                     defects: Sequence[str] = DEFECTS,
                     size: int = 128,
                     contrast: float = 1.0,
                     seed: int = 0) -> str:
    """Write a synthetic MVTec-AD-style anomaly detection set.

    Layout per category::

        <root>/<category>/train/good/000.png
        <root>/<category>/test/good/000.png
        <root>/<category>/test/<defect>/000.png
        <root>/<category>/ground_truth/<defect>/000_mask.png

    Args:
        root (str): Output folder (created).
        categories (Sequence[str]): Keys of :data:`CATEGORIES`. Defaults to
            ``('fabric', )``.
        num_train (int): Normal training images per category. Defaults to 20.
        num_test_good (int): Normal test images. Defaults to 8.
        num_test_defect (int): Test images per defect type. Defaults to 6.
        defects (Sequence[str]): Defect types of :data:`DEFECTS`.
        size (int): Image side in pixels (>= 32). Defaults to 128.
        contrast (float): Defect strength; lower is harder. Defaults to 1.
        seed (int): Seed; every category and folder has its own stream.

    Returns:
        str: ``root``.
    """
    for c_index, category in enumerate(categories):
        base = osp.join(root, category)
        groups = [('train', 'good', num_train),
                  ('test', 'good', num_test_good)]
        groups += [('test', d, num_test_defect) for d in defects]
        for g_index, (split, label, count) in enumerate(groups):
            rng = np.random.default_rng([seed, c_index, g_index])
            for i in range(count):
                image = draw_surface(size, category, rng)
                name = f'{i:03d}.png'
                if label != 'good':
                    mask = draw_defect(image, label, rng, contrast)
                    _write_mask(
                        osp.join(base, 'ground_truth', label,
                                 f'{i:03d}_mask.png'), mask)
                _write_rgb(osp.join(base, split, label, name), image)
    return root


DEFAULT_CLS_COUNTS: Dict[str, Dict[str, int]] = {
    'train': dict(good=48, scratch=6, blob=6),
    'val': dict(good=16, scratch=4, blob=4),
    'test': dict(good=16, scratch=4, blob=4),
}


def write_defect_classification(
        root: str,
        counts: Optional[Dict[str, Dict[str, int]]] = None,
        category: str = 'fabric',
        size: int = 128,
        contrast: float = 1.0,
        seed: int = 0) -> str:
    """Write an imbalanced ImageFolder of good and defective surfaces.

    Args:
        root (str): Output folder; gets ``<split>/<class>/*.png``.
        counts (dict, optional): ``{split: {class: count}}`` with classes
            ``'good'`` and those of :data:`DEFECTS`. Defaults to
            :data:`DEFAULT_CLS_COUNTS` (8 good images per defect image).
        category (str): Texture of :data:`CATEGORIES`. Defaults to
            ``'fabric'``.
        size (int): Image side in pixels. Defaults to 128.
        contrast (float): Defect strength. Defaults to 1.
        seed (int): Seed. Defaults to 0.

    Returns:
        str: ``root``.
    """
    counts = DEFAULT_CLS_COUNTS if counts is None else counts
    for s_index, (split, per_class) in enumerate(counts.items()):
        for l_index, (label, count) in enumerate(per_class.items()):
            if label != 'good' and label not in DEFECTS:
                raise ValueError(f'Unknown class {label!r} in counts'
                                 f'[{split!r}]; use good or one of '
                                 f'{DEFECTS}.')
            rng = np.random.default_rng([seed, s_index, l_index])
            for i in range(count):
                image = draw_surface(size, category, rng)
                if label != 'good':
                    draw_defect(image, label, rng, contrast)
                name = f'{label}_{i:04d}.png'
                _write_rgb(osp.join(root, split, label, name), image)
    return root


def write_defect_segmentation(root: str,
                              num_train: int = 24,
                              num_val: int = 8,
                              defect_fraction: float = 0.75,
                              category: str = 'fabric',
                              size: int = 128,
                              contrast: float = 1.0,
                              seed: int = 0) -> str:
    """Write ``img_dir/{train,val}`` images and ``ann_dir`` index masks.

    Mask values are indices of :data:`SEG_CLASSES` (0 background, 1
    scratch, 2 blob), the layout of the core ``SegFolderDataset``.

    Args:
        root (str): Output folder.
        num_train (int): Training images. Defaults to 24.
        num_val (int): Validation images. Defaults to 8.
        defect_fraction (float): Share of images with a defect (each gets
            one scratch or one blob, alternately); the others are good.
            Defaults to 0.75.
        category (str): Texture of :data:`CATEGORIES`. Defaults to
            ``'fabric'``.
        size (int): Image side in pixels. Defaults to 128.
        contrast (float): Defect strength. Defaults to 1.
        seed (int): Seed. Defaults to 0.

    Returns:
        str: ``root``.
    """
    if not 0 <= defect_fraction <= 1:
        raise ValueError(f'defect_fraction must be in [0, 1], got '
                         f'{defect_fraction}.')
    for s_index, (split, count) in enumerate((('train', num_train),
                                              ('val', num_val))):
        rng = np.random.default_rng([seed, s_index, 7])
        num_defective = int(round(defect_fraction * count))
        for i in range(count):
            image = draw_surface(size, category, rng)
            mask = np.zeros((size, size), np.uint8)
            if i < num_defective:
                defect = DEFECTS[i % len(DEFECTS)]
                drawn = draw_defect(image, defect, rng, contrast)
                mask[drawn > 0] = SEG_CLASSES.index(defect)
            name = f'{split}_{i:04d}.png'
            _write_rgb(osp.join(root, 'img_dir', split, name), image)
            _write_mask(osp.join(root, 'ann_dir', split, name), mask)
    return root
