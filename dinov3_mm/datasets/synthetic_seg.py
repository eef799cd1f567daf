"""Procedurally drawn segmentation data: shapes with exact masks."""
import os
from typing import Callable, Tuple

import cv2
import numpy as np

from .synthetic import fill_shape, textured_background

SEG_CLASSES = ('background', 'circle', 'square', 'triangle')
SEG_PALETTE = ((0, 0, 0), (220, 20, 60), (0, 128, 255), (255, 200, 0))


def draw_seg_sample(size: int, rng: np.random.Generator,
                    max_shapes: int = 3) -> Tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 image and its uint8 mask (0 background, 1 circle,
    2 square, 3 triangle); later shapes cover earlier ones in both."""
    image = textured_background(size, rng)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        label = int(rng.integers(1, 4))
        colour = tuple(int(c) for c in rng.uniform(150, 255, size=3))
        cx, cy = rng.uniform(0.2, 0.8, size=2) * size
        r = rng.uniform(0.1, 0.25) * size
        shape = SEG_CLASSES[label]
        fill_shape(image, shape, cx, cy, r, colour)
        fill_shape(mask, shape, cx, cy, r, label)
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
    return write_seg_folder_dataset(root, draw_seg_sample, num_train,
                                    num_val, size, seed)


def write_seg_folder_dataset(root: str, draw_sample: Callable, num_train: int,
                             num_val: int, size: int, seed: int) -> str:
    """Write ``img_dir/{train,val}/*.png`` and ``ann_dir/{train,val}/*.png``
    of samples drawn by ``draw_sample(size, rng) -> (image, mask)``.

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
            image, mask = draw_sample(size, rng)
            name = f'{split}_{i:05d}.png'
            cv2.imwrite(os.path.join(img_dir, name),
                        cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(os.path.join(ann_dir, name), mask)
    return root
