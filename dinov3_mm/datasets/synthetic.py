"""Procedurally drawn images, for demos and tests that need no downloads."""
import os
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

SHAPES = ('circle', 'square', 'triangle')


def textured_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 ``(size, size, 3)``: tinted oblique stripes plus noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, np.pi)
    stripes = np.sin(2 * np.pi * rng.uniform(2, 6) *
                     (xx * np.cos(angle) + yy * np.sin(angle)))
    base = rng.uniform(40, 120, size=3)
    image = base + 30 * stripes[..., None] + rng.normal(0, 8, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def fill_shape(target: np.ndarray, shape: str, cx: float, cy: float,
               radius: float, value) -> None:
    """Draw a filled circle, square or triangle into ``target`` in place."""
    if shape == 'circle':
        cv2.circle(target, (int(cx), int(cy)), int(radius), value, -1)
    elif shape == 'square':
        cv2.rectangle(target, (int(cx - radius), int(cy - radius)),
                      (int(cx + radius), int(cy + radius)), value, -1)
    else:
        pts = np.array([[cx, cy - radius], [cx - radius, cy + radius],
                        [cx + radius, cy + radius]], dtype=np.int32)
        cv2.fillPoly(target, [pts], value)


def draw_shape_image(shape: str, size: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Draw one RGB uint8 image: a textured background and a coloured shape.

    Args:
        shape (str): One of :data:`SHAPES`.
        size (int): Image side in pixels.
        rng (np.random.Generator): Source of randomness.
    """
    if shape not in SHAPES:
        raise ValueError(f'Unknown shape {shape!r}; expected one of {SHAPES}.')
    image = textured_background(size, rng)
    colour = tuple(int(c) for c in rng.uniform(150, 255, size=3))
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
    radius = rng.uniform(0.15, 0.3) * size
    fill_shape(image, shape, cx, cy, radius, colour)
    return image


def make_shape_images(num: int, size: int = 224,
                      seed: int = 0) -> List[np.ndarray]:
    """``num`` images cycling through :data:`SHAPES`, reproducible by seed."""
    rng = np.random.default_rng(seed)
    return [draw_shape_image(SHAPES[i % len(SHAPES)], size, rng)
            for i in range(num)]


def _vary(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate the whole picture, change its exposure and add sensor noise."""
    size = image.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2),
                                     float(rng.uniform(0, 360)), 1.0)
    image = cv2.warpAffine(image, matrix, (size, size),
                           borderMode=cv2.BORDER_REFLECT_101)
    image = image.astype(np.float32) * rng.uniform(0.7, 1.2)
    image += rng.normal(0, rng.uniform(2, 10), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_shape_dataset(root: str,
                        num_per_class: int = 20,
                        size: int = 64,
                        seed: int = 0,
                        splits: Optional[Sequence[str]] = ('train', 'val',
                                                           'test'),
                        per_split: Optional[Dict[str, int]] = None) -> str:
    """Write an ImageFolder of PNG shapes (circle / square / triangle).

    The shapes vary in size, position, colour, background texture, rotation,
    exposure and noise, so the task is learnable but not trivial. Each split
    draws from its own random stream: no image repeats across splits.

    Args:
        root (str): Output folder (created).
        num_per_class (int): Images per class and split. Defaults to 20.
        size (int): Image side in pixels. Defaults to 64.
        seed (int): Seed of the drawing. Defaults to 0.
        splits (sequence[str], optional): Split folders to write
            (``root/<split>/<class>/*.png``); None or empty writes
            ``root/<class>/*.png``. Defaults to ``('train', 'val', 'test')``.
        per_split (dict[str, int], optional): Images per class for some
            splits, overriding ``num_per_class``. Defaults to None.

    Returns:
        str: ``root``.
    """
    per_split = dict(per_split or {})
    for index, split in enumerate(splits or [None]):
        rng = np.random.default_rng([seed, index])
        count = per_split.get(split, num_per_class)
        folder = os.path.join(root, split) if split else root
        for shape in SHAPES:
            os.makedirs(os.path.join(folder, shape), exist_ok=True)
            for i in range(count):
                image = _vary(draw_shape_image(shape, size, rng), rng)
                path = os.path.join(folder, shape, f'{shape}_{i:05d}.png')
                cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root
