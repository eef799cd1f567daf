"""Procedurally drawn instance segmentation data in COCO format.

Objects are circles, squares, triangles and stars (the class is the shape;
each object has its own colour), small to medium, placed at random and next
to earlier ones so that they touch and overlap. Later objects occlude earlier
ones; an object is only added when every earlier object keeps at least
``min_visible`` of its pixels, so each drawn pixel of an object belongs to a
labelled instance. Masks, boxes and areas are those of the visible parts.
"""
import json
import os
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .synthetic import textured_background

INSTANCE_CLASSES = ('circle', 'square', 'triangle', 'star')
SPLITS = ('train', 'val', 'test')
# Images per split written by default (the scratch detection recipe needs
# the 3000 distinct train images: 600 overfitted).
DEFAULT_COUNTS = dict(train=3000, val=100, test=100)


def _noise_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Blotchy two-tone noise plus fine grain, RGB uint8."""
    coarse = rng.normal(size=(6, 6, 3)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    base = rng.uniform(50, 120, size=3)
    image = base + 25 * field + rng.normal(0, 10, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _polygon(shape: str, cx: float, cy: float, r: float,
             angle: float) -> np.ndarray:
    if shape == 'square':
        radii, count = [r * np.sqrt(2)], 4
    elif shape == 'triangle':
        radii, count = [r * 1.2], 3
    else:
        radii, count = [r * 1.15, r * 0.48], 10
    t = angle + np.arange(count) * 2 * np.pi / count
    rad = np.array([radii[i % len(radii)] for i in range(count)])
    return np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)


def shape_mask(shape: str, size: int, cx: float, cy: float, r: float,
               angle: float) -> np.ndarray:
    """Bool ``(size, size)`` mask of one filled shape.

    Args:
        shape (str): One of :data:`INSTANCE_CLASSES`.
        size (int): Image side.
        cx (float): Centre x in pixels.
        cy (float): Centre y in pixels.
        r (float): Radius (half the side of a square).
        angle (float): Rotation in radians (not used for circles).
    """
    canvas = np.zeros((size, size), np.uint8)
    if shape == 'circle':
        cv2.circle(canvas, (int(round(cx)), int(round(cy))), int(round(r)),
                   1, -1)
    else:
        pts = np.round(_polygon(shape, cx, cy, r, angle)).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1)
    return canvas.astype(bool)


def _place(rng: np.random.Generator, size: int, objects: List[dict],
           min_radius: float, max_radius: float) -> Tuple[float, float, float]:
    r = rng.uniform(min_radius, max_radius) * size
    if objects and rng.random() < 0.5:
        other = objects[int(rng.integers(len(objects)))]
        angle = rng.uniform(0, 2 * np.pi)
        dist = (other['r'] + r) * rng.uniform(0.75, 1.05)
        cx = other['cx'] + dist * np.cos(angle)
        cy = other['cy'] + dist * np.sin(angle)
    else:
        cx, cy = rng.uniform(r, size - r, size=2)
    return (float(np.clip(cx, r, size - r)), float(np.clip(cy, r, size - r)),
            float(r))


def draw_instance_sample(size: int,
                         rng: np.random.Generator,
                         num_objects: int,
                         min_visible: float = 0.3,
                         min_radius: float = 0.05,
                         max_radius: float = 0.16
                         ) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """One RGB uint8 image and its objects ``(label, visible bool mask)``.

    Args:
        size (int): Image side.
        rng (np.random.Generator): Source of randomness.
        num_objects (int): Objects to try to place (fewer when a placement
            would hide an earlier object below ``min_visible``).
        min_visible (float): Smallest visible fraction of an object.
        min_radius (float): Smallest radius as a fraction of ``size``.
        max_radius (float): Largest radius as a fraction of ``size``.
    """
    image = (textured_background(size, rng) if rng.random() < 0.5 else
             _noise_background(size, rng))
    objects: List[dict] = []
    for _ in range(num_objects):
        for _attempt in range(8):
            label = int(rng.integers(len(INSTANCE_CLASSES)))
            cx, cy, r = _place(rng, size, objects, min_radius, max_radius)
            full = shape_mask(INSTANCE_CLASSES[label], size, cx, cy, r,
                              rng.uniform(0, 2 * np.pi))
            if full.sum() < 16:
                continue
            if all((o['visible'] & ~full).sum() >= min_visible * o['area']
                   for o in objects):
                break
        else:
            continue
        for o in objects:
            o['visible'] &= ~full
        colour = rng.uniform(0, 255, size=3)
        colour[int(rng.integers(3))] = rng.uniform(170, 255)
        shade = rng.normal(0, 6, (size, size, 3))
        image[full] = np.clip(colour + shade[full], 0, 255).astype(np.uint8)
        objects.append(dict(label=label, cx=cx, cy=cy, r=r, visible=full,
                            area=int(full.sum())))
    return image, [(o['label'], o['visible']) for o in objects]


def instances_to_coco(objects: List[Tuple[int, np.ndarray]], image_id: int,
                      first_ann_id: int) -> List[dict]:
    """COCO annotations (RLE, area and bbox of the visible masks)."""
    from pycocotools import mask as mask_utils
    anns = []
    for i, (label, mask) in enumerate(objects):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]
        anns.append(dict(
            id=first_ann_id + i, image_id=image_id, category_id=label + 1,
            bbox=bbox, area=int(mask.sum()), iscrowd=0,
            segmentation=dict(size=[int(v) for v in rle['size']],
                              counts=rle['counts'].decode('ascii'))))
    return anns


def write_instance_shapes_dataset(root: str,
                                  num_train: int = DEFAULT_COUNTS['train'],
                                  num_val: int = DEFAULT_COUNTS['val'],
                                  num_test: int = DEFAULT_COUNTS['test'],
                                  size: int = 160,
                                  min_objects: int = 1,
                                  max_objects: int = 6,
                                  empty_fraction: float = 0.05,
                                  seed: int = 0,
                                  counts: Optional[Dict[str, int]] = None
                                  ) -> str:
    """Write ``<root>/{train,val,test}/*.png`` and
    ``<root>/annotations/instances_{split}.json`` (COCO, RLE masks).

    Args:
        root (str): Output folder (created).
        num_train (int): Train images. Defaults to 3000.
        num_val (int): Validation images. Defaults to 100.
        num_test (int): Test images. Defaults to 100.
        size (int): Image side in pixels. Defaults to 160.
        min_objects (int): Fewest objects of a non-empty image. Defaults to
            1.
        max_objects (int): Most objects per image. Defaults to 6.
        empty_fraction (float): Share of images without objects (at least
            one per split of 10 or more images). Defaults to 0.05.
        seed (int): Seed; each split draws from its own stream.
        counts (dict, optional): ``{split: images}`` overriding the three
            numbers above.

    Returns:
        str: ``root``.
    """
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f'min_objects={min_objects}, max_objects='
                         f'{max_objects}: need 1 <= min <= max.')
    counts = dict(counts or dict(train=num_train, val=num_val,
                                 test=num_test))
    categories = [dict(id=i + 1, name=n, supercategory='shape')
                  for i, n in enumerate(INSTANCE_CLASSES)]
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    for index, split in enumerate(SPLITS):
        num = int(counts.get(split, 0))
        rng = np.random.default_rng([seed, index])
        folder = os.path.join(root, split)
        os.makedirs(folder, exist_ok=True)
        num_empty = int(round(num * empty_fraction))
        if empty_fraction > 0 and num >= 10:
            num_empty = max(1, num_empty)
        empty = set(rng.choice(num, size=num_empty, replace=False).tolist()
                    ) if num_empty else set()
        images, annotations = [], []
        for i in range(num):
            n = 0 if i in empty else int(rng.integers(min_objects,
                                                       max_objects + 1))
            image, objects = draw_instance_sample(size, rng, n)
            name = f'{split}_{i:05d}.png'
            cv2.imwrite(os.path.join(folder, name),
                        cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            images.append(dict(id=i + 1, file_name=name, height=size,
                               width=size))
            annotations += instances_to_coco(objects, i + 1,
                                             len(annotations) + 1)
        with open(os.path.join(root, 'annotations',
                               f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories,
                           info=dict(description='dinov3_mm instance '
                                     f'shapes, {split}, seed {seed}')), f)
    return root
