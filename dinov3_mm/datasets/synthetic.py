"""Procedurally drawn images, for demos and tests that need no downloads."""
from typing import List

import cv2
import numpy as np

SHAPES = ('circle', 'square', 'triangle')


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
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, np.pi)
    stripes = np.sin(2 * np.pi * rng.uniform(2, 6) *
                     (xx * np.cos(angle) + yy * np.sin(angle)))
    base = rng.uniform(40, 120, size=3)
    image = base + 30 * stripes[..., None] + rng.normal(0, 8, (size, size, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    colour = tuple(int(c) for c in rng.uniform(150, 255, size=3))
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
    radius = rng.uniform(0.15, 0.3) * size
    if shape == 'circle':
        cv2.circle(image, (int(cx), int(cy)), int(radius), colour, -1)
    elif shape == 'square':
        cv2.rectangle(image, (int(cx - radius), int(cy - radius)),
                      (int(cx + radius), int(cy + radius)), colour, -1)
    else:
        pts = np.array([[cx, cy - radius], [cx - radius, cy + radius],
                        [cx + radius, cy + radius]], dtype=np.int32)
        cv2.fillPoly(image, [pts], colour)
    return image


def make_shape_images(num: int, size: int = 224,
                      seed: int = 0) -> List[np.ndarray]:
    """``num`` images cycling through :data:`SHAPES`, reproducible by seed."""
    rng = np.random.default_rng(seed)
    return [draw_shape_image(SHAPES[i % len(SHAPES)], size, rng)
            for i in range(num)]
