"""Procedurally drawn segmentation data: shapes with exact masks."""
import os
from typing import Tuple

import cv2
import numpy as np

SEG_CLASSES = ('background', 'circle', 'square', 'triangle')
SEG_PALETTE = ((0, 0, 0), (220, 20, 60), (0, 128, 255), (255, 200, 0))


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, np.pi)
    stripes = np.sin(2 * np.pi * rng.uniform(2, 6) *
                     (xx * np.cos(angle) + yy * np.sin(angle)))
    base = rng.uniform(40, 120, size=3)
    image = base + 30 * stripes[..., None] + rng.normal(0, 8, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def draw_seg_sample(size: int, rng: np.random.Generator,
                    max_shapes: int = 3) -> Tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 image and its uint8 mask (0 background, 1 circle,
    2 square, 3 triangle); later shapes cover earlier ones in both."""
    image = _background(size, rng)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        label = int(rng.integers(1, 4))
        colour = tuple(int(c) for c in rng.uniform(150, 255, size=3))
        cx, cy = rng.uniform(0.2, 0.8, size=2) * size
        r = rng.uniform(0.1, 0.25) * size
        for target, value in ((image, colour), (mask, label)):
            if label == 1:
                cv2.circle(target, (int(cx), int(cy)), int(r), value, -1)
            elif label == 2:
                cv2.rectangle(target, (int(cx - r), int(cy - r)),
                              (int(cx + r), int(cy + r)), value, -1)
            else:
                pts = np.array([[cx, cy - r], [cx - r, cy + r],
                                [cx + r, cy + r]], dtype=np.int32)
                cv2.fillPoly(target, [pts], value)
    return image, mask


def write_seg_shapes_dataset(root: str,
                             num_train: int = 16,
                             num_val: int = 4,
                             size: int = 64,
                             seed: int = 0) -> str:
    """Write mmseg-style ``img_dir/{train,val}/*.png`` and
    ``ann_dir/{train,val}/*.png`` (single-channel index masks with
    :data:`SEG_CLASSES`), for :class:`SegFolderDataset`.

    Returns:
        str: ``root``.
    """
    for index, (split, count) in enumerate((('train', num_train),
                                            ('val', num_val))):
        rng = np.random.default_rng([seed, index])
        img_dir = os.path.join(root, 'img_dir', split)
        ann_dir = os.path.join(root, 'ann_dir', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(count):
            image, mask = draw_seg_sample(size, rng)
            name = f'{split}_{i:05d}.png'
            cv2.imwrite(os.path.join(img_dir, name),
                        cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(os.path.join(ann_dir, name), mask)
    return root
