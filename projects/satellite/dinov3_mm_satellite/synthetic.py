"""A small synthetic land-cover set of multispectral GeoTIFFs.

One UTM scene (EPSG:32633 by default, 10 m pixels) is drawn with smooth
random regions of four land-cover classes, each with a Sentinel-2-like
spectral signature plus noise, stored as reflectance x 10000 in uint16.
The scene is cut into tiles, each a GeoTIFF with its own tiepoint, and
every tile has a single-band mask GeoTIFF on the same grid::

    out_dir/
      img_dir/{train,val}/tile_XXX.tif   (H, W, B) uint16, band names set
      ann_dir/{train,val}/tile_XXX.tif   (H, W) uint8 class indices
      scenes/scene.tif, scenes/scene_mask.tif   the whole scene
      dataset.json                        classes, bands, CRS, statistics
"""
import json
import math
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np

from .bands import compute_band_statistics
from .georef import GeoReference
from .geotiff import write_geotiff

#: Sentinel-2 bands: blue, green, red, near infrared, two short-wave IR.
BAND_NAMES = ('B2', 'B3', 'B4', 'B8', 'B11', 'B12')
CLASSES = ('water', 'vegetation', 'bare_soil', 'built_up')
PALETTE = [[30, 90, 200], [40, 160, 60], [190, 150, 90], [200, 60, 60]]
#: Mean surface reflectance of each class in each band of BAND_NAMES.
SIGNATURES: Dict[str, Tuple[float, ...]] = {
    'water': (0.07, 0.06, 0.04, 0.03, 0.02, 0.01),
    'vegetation': (0.04, 0.08, 0.05, 0.40, 0.22, 0.11),
    'bare_soil': (0.12, 0.16, 0.21, 0.28, 0.35, 0.30),
    'built_up': (0.16, 0.17, 0.18, 0.23, 0.27, 0.24),
}
REFLECTANCE_SCALE = 10000


def land_cover_map(height: int, width: int, num_classes: int,
                   rng: np.random.Generator, feature_size: int = 24
                   ) -> np.ndarray:
    """``(H, W)`` uint8 labels: argmax of smooth random fields."""
    coarse = (max(2, math.ceil(height / feature_size)) + 1,
              max(2, math.ceil(width / feature_size)) + 1)
    fields = [
        cv2.resize(rng.standard_normal(coarse).astype(np.float32),
                   (width, height), interpolation=cv2.INTER_CUBIC)
        for _ in range(num_classes)
    ]
    return np.argmax(np.stack(fields), axis=0).astype(np.uint8)


def render_bands(labels: np.ndarray, num_bands: int,
                 rng: np.random.Generator, noise: float = 0.01
                 ) -> np.ndarray:
    """``(H, W, B)`` uint16 reflectance x 10000 of a label map."""
    table = np.asarray([SIGNATURES[c][:num_bands] for c in CLASSES],
                       np.float32)
    reflectance = table[labels] + rng.normal(
        0, noise, labels.shape + (num_bands, )).astype(np.float32)
    values = np.rint(reflectance * REFLECTANCE_SCALE)
    return np.clip(values, 1, 65535).astype(np.uint16)


def generate_geotiff_dataset(out_dir: str,
                             num_train: int = 8,
                             num_val: int = 2,
                             tile_size: int = 64,
                             num_bands: int = 6,
                             seed: int = 0,
                             epsg: int = 32633,
                             pixel_size: float = 10.0,
                             origin: Tuple[float, float] = (500000.0,
                                                            5000000.0),
                             band_layout: str = 'last',
                             noise: float = 0.01) -> dict:
    """Write the synthetic set; see the module docstring for the layout.

    Args:
        out_dir (str): Output folder.
        num_train (int): Training tiles. Defaults to 8.
        num_val (int): Validation tiles. Defaults to 2.
        tile_size (int): Tile side in pixels. Defaults to 64.
        num_bands (int): 1-6 bands, the first of :data:`BAND_NAMES`.
            Defaults to 6.
        seed (int): Random seed. Defaults to 0.
        epsg (int): Projected CRS. Defaults to 32633 (WGS 84 / UTM 33N).
        pixel_size (float): Metres per pixel. Defaults to 10.
        origin (tuple[float, float]): Easting and northing of the scene's
            top-left corner.
        band_layout (str): ``'last'`` (pixel-interleaved) or ``'first'``
            (band-sequential) storage. Defaults to ``'last'``.
        noise (float): Reflectance noise std. Defaults to 0.01.

    Returns:
        dict: The ``dataset.json`` content plus ``root``.
    """
    if not 1 <= num_bands <= len(BAND_NAMES):
        raise ValueError(f'num_bands must be in [1, {len(BAND_NAMES)}], got '
                         f'{num_bands}.')
    if num_train < 1 or num_val < 0 or tile_size < 8:
        raise ValueError('Need num_train >= 1, num_val >= 0 and tile_size '
                         '>= 8.')
    rng = np.random.default_rng(seed)
    total = num_train + num_val
    cols = math.ceil(math.sqrt(total))
    rows = math.ceil(total / cols)
    height, width = rows * tile_size, cols * tile_size
    labels = land_cover_map(height, width, len(CLASSES), rng)
    image = render_bands(labels, num_bands, rng, noise)
    names = BAND_NAMES[:num_bands]
    citation = (f'WGS 84 / UTM zone {epsg % 100}N'
                if 32601 <= epsg <= 32660 else f'EPSG:{epsg}')
    scene_ref = GeoReference.from_geotransform(
        (origin[0], pixel_size, 0.0, origin[1], 0.0, -pixel_size), epsg,
        citation=citation)
    scenes = osp.join(out_dir, 'scenes')
    write_geotiff(osp.join(scenes, 'scene.tif'), image, scene_ref, names,
                  band_layout)
    write_geotiff(osp.join(scenes, 'scene_mask.tif'), labels, scene_ref)
    train_images = []
    for i in range(total):
        split = 'train' if i < num_train else 'val'
        r, c = divmod(i, cols)
        y, x = r * tile_size, c * tile_size
        tile_ref = scene_ref.window(y, x)
        name = f'tile_{i:03d}.tif'
        img_path = osp.join(out_dir, 'img_dir', split, name)
        window = (slice(y, y + tile_size), slice(x, x + tile_size))
        write_geotiff(img_path, image[window], tile_ref, names, band_layout)
        write_geotiff(osp.join(out_dir, 'ann_dir', split, name),
                      labels[window], tile_ref)
        if split == 'train':
            train_images.append(img_path)
    stats = compute_band_statistics(train_images,
                                    scale=1.0 / REFLECTANCE_SCALE)
    meta = dict(
        classes=list(CLASSES),
        palette=PALETTE,
        band_names=list(names),
        epsg=epsg,
        pixel_size=pixel_size,
        tile_size=tile_size,
        num_train=num_train,
        num_val=num_val,
        reflectance_scale=REFLECTANCE_SCALE,
        band_stats=stats,
        scene=osp.join('scenes', 'scene.tif'),
        scene_mask=osp.join('scenes', 'scene_mask.tif'))
    with open(osp.join(out_dir, 'dataset.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return dict(meta, root=out_dir)
