"""Procedurally drawn segmentation data whose classes differ by texture.

Every image uses one random pair of colours everywhere: the background is a
blotchy camouflage of the pair and each object is a circle, square or
triangle filled with stripes, a checkerboard or dots of the same two colours.
Colour and outline therefore say nothing about the class; only the texture
does (``stripes``, ``checker``, ``dots``), which a model must learn.
"""
from typing import Tuple

import cv2
import numpy as np

from .synthetic import SHAPES, fill_shape
from .synthetic_seg import write_seg_folder_dataset

TEXTURE_CLASSES = ('background', 'stripes', 'checker', 'dots')
TEXTURE_PALETTE = ((0, 0, 0), (220, 20, 60), (0, 128, 255), (255, 200, 0))


def colour_pair(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Two RGB colours (float, 0-255) at least 80 apart in brightness."""
    dark = rng.uniform(20, 110, size=3)
    light = rng.uniform(150, 240, size=3)
    return (dark, light) if rng.random() < 0.5 else (light, dark)


def _rotated_grid(size: int, rng: np.random.Generator):
    """Pixel coordinates rotated by a random angle, shifted randomly."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle) + rng.uniform(0, size)
    v = -xx * np.sin(angle) + yy * np.cos(angle) + rng.uniform(0, size)
    return u, v


def texture_pattern(kind: str, size: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Binary ``(size, size)`` float pattern (1 = first colour).

    Args:
        kind (str): One of :data:`TEXTURE_CLASSES`; ``'background'`` is a
            blotchy low-frequency camouflage, the others a periodic texture
            (period about a tenth of the image) at a random angle.
        size (int): Image side in pixels.
        rng (np.random.Generator): Source of randomness.
    """
    if kind == 'background':
        coarse = rng.normal(size=(4, 4)).astype(np.float32)
        field = cv2.resize(coarse, (size, size),
                           interpolation=cv2.INTER_CUBIC)
        return (field > 0).astype(np.float32)
    period = rng.uniform(0.08, 0.14) * size
    u, v = _rotated_grid(size, rng)
    if kind == 'stripes':
        return ((u / period) % 1.0 < 0.5).astype(np.float32)
    if kind == 'checker':
        cells = np.floor(u / period) + np.floor(v / period)
        return (cells % 2 == 0).astype(np.float32)
    if kind == 'dots':
        du = (u / period) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        return (du * du + dv * dv < 0.09).astype(np.float32)
    raise ValueError(f'Unknown texture {kind!r}; expected one of '
                     f'{TEXTURE_CLASSES}.')


def draw_texture_seg_sample(
        size: int, rng: np.random.Generator, max_shapes: int = 3,
        noise: float = 6.0) -> Tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 image and its uint8 mask (0 background, 1 stripes,
    2 checker, 3 dots); later objects cover earlier ones in both.

    The outline of each object (circle, square or triangle) is drawn at
    random, independently of its texture class. Gaussian noise of std
    ``noise`` is added last (0: the image holds exactly two colours).
    """
    first, second = colour_pair(rng)

    def paint(kind: str) -> np.ndarray:
        pattern = texture_pattern(kind, size, rng)[..., None]
        return pattern * first + (1 - pattern) * second

    image = paint('background')
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        label = int(rng.integers(1, len(TEXTURE_CLASSES)))
        region = np.zeros((size, size), np.uint8)
        cx, cy = rng.uniform(0.2, 0.8, size=2) * size
        radius = rng.uniform(0.12, 0.25) * size
        fill_shape(region, SHAPES[int(rng.integers(len(SHAPES)))], cx, cy,
                   radius, 1)
        inside = region.astype(bool)
        image[inside] = paint(TEXTURE_CLASSES[label])[inside]
        mask[inside] = label
    image = image + rng.normal(0, noise, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_texture_seg_dataset(root: str,
                              num_train: int = 16,
                              num_val: int = 4,
                              size: int = 64,
                              seed: int = 0) -> str:
    """Write mmseg-style ``img_dir/{train,val}/*.png`` and
    ``ann_dir/{train,val}/*.png`` (single-channel index masks with
    :data:`TEXTURE_CLASSES`), for :class:`SegFolderDataset`.

    Returns:
        str: ``root``.
    """
    return write_seg_folder_dataset(root, draw_texture_seg_sample,
                                    num_train, num_val, size, seed)
