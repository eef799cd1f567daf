"""Robust image loading: any common mode and bit depth to RGB uint8."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from ...utils.image_ops import DEPTH_SCALINGS, read_image, to_uint8

__all__ = ['DEPTH_SCALINGS', 'LoadImage', 'read_image', 'to_uint8']


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Load ``img_path`` as an RGB (or BGR) uint8 ``(H, W, 3)`` image.

    Uses Pillow, which refuses truncated JPEG/PNG data (this transform never
    sets ``ImageFile.LOAD_TRUNCATED_IMAGES``), so a broken file fails instead
    of loading half grey. 16-bit data are scaled to 8 bit by
    ``depth_scaling`` (default: ``value / 257``).

    Required Keys:

    - img_path

    Added Keys:

    - img (np.uint8, ``(H, W, 3)``)
    - img_shape (``(H, W)``)
    - ori_shape (``(H, W)``)

    Args:
        to_rgb (bool): Channels in RGB order; False gives BGR (OpenCV).
            Defaults to True.
        depth_scaling (str): ``'fixed'`` (``/257`` for 16 bit) or
            ``'minmax'`` (per-image range). Defaults to ``'fixed'``.
        alpha_background (sequence[int]): RGB colour composited under
            transparent pixels. Defaults to ``(0, 0, 0)``.
        exif_orientation (bool): Apply the EXIF orientation. Defaults to True.

    Raises:
        ValueError: ``Cannot read image <path>: ...`` for a missing, corrupt
            or truncated file.
    """

    def __init__(self,
                 to_rgb: bool = True,
                 depth_scaling: str = 'fixed',
                 alpha_background: Sequence[int] = (0, 0, 0),
                 exif_orientation: bool = True) -> None:
        if depth_scaling not in DEPTH_SCALINGS:
            raise ValueError(f'depth_scaling={depth_scaling!r}; expected one '
                             f'of {DEPTH_SCALINGS}.')
        self.to_rgb = to_rgb
        self.depth_scaling = depth_scaling
        self.alpha_background = tuple(alpha_background)
        self.exif_orientation = exif_orientation

    def transform(self, results: dict) -> dict:
        """Read the image into ``results['img']``."""
        img = read_image(results['img_path'], self.depth_scaling,
                         self.alpha_background, self.exif_orientation)
        if not self.to_rgb:
            img = np.ascontiguousarray(img[..., ::-1])
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_rgb={self.to_rgb}, '
                f'depth_scaling={self.depth_scaling!r}, '
                f'alpha_background={self.alpha_background}, '
                f'exif_orientation={self.exif_orientation})')
