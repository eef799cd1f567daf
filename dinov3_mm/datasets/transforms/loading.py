"""Robust image loading: any common mode and bit depth to RGB uint8."""
from typing import Optional, Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image, ImageOps, UnidentifiedImageError

from ...registry import TRANSFORMS

DEPTH_SCALINGS = ('fixed', 'minmax')


def to_uint8(array: np.ndarray, depth_scaling: str = 'fixed') -> np.ndarray:
    """Scale a high bit depth or float array to uint8.

    Args:
        array (np.ndarray): Image data of any numeric dtype.
        depth_scaling (str): ``'fixed'`` maps the full range of the type to
            0..255 (16-bit and Pillow's 32-bit ``I`` mode holding 16-bit
            values: ``value / 257``; floats are taken as 0..1 when they lie
            in it), keeping intensities comparable across images.
            ``'minmax'`` stretches each image's own min..max to 0..255, which
            suits 12-bit data in 16-bit files (X-ray, microscopy). Defaults
            to ``'fixed'``.
    """
    if depth_scaling not in DEPTH_SCALINGS:
        raise ValueError(f'depth_scaling={depth_scaling!r}; expected one of '
                         f'{DEPTH_SCALINGS}.')
    if array.dtype == np.uint8:
        return array
    data = array.astype(np.float64)
    if depth_scaling == 'fixed':
        if np.issubdtype(array.dtype, np.integer) and data.min() >= 0:
            top = (65535.0 if data.max() <= 65535 else float(
                np.iinfo(array.dtype).max))
            return np.clip(np.rint(data * 255.0 / top), 0, 255).astype(
                np.uint8)
        if data.size and data.min() >= 0 and data.max() <= 1:
            return np.clip(np.rint(data * 255.0), 0, 255).astype(np.uint8)
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0, 0)
    if hi <= lo:
        return np.zeros(array.shape, np.uint8)
    return np.clip(np.rint((data - lo) * 255.0 / (hi - lo)), 0,
                   255).astype(np.uint8)


def _composite(image: Image.Image, background: Sequence[int]) -> np.ndarray:
    rgba = np.asarray(image.convert('RGBA'), dtype=np.float32)
    alpha = rgba[..., 3:] / 255.0
    bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
    return np.rint(rgba[..., :3] * alpha + bg * (1 - alpha)).astype(np.uint8)


def _high_depth_color(path: str) -> Optional[np.ndarray]:
    """16-bit colour PNG/TIFF data as RGB, which Pillow reduces to 8 bit."""
    data = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype == np.uint8 or data.ndim != 3:
        return None
    return cv2.cvtColor(data[..., :3], cv2.COLOR_BGR2RGB)


def read_image(path: str,
               depth_scaling: str = 'fixed',
               alpha_background: Sequence[int] = (0, 0, 0),
               exif_orientation: bool = True) -> np.ndarray:
    """Read any common image file as an RGB uint8 ``(H, W, 3)`` array.

    Grayscale, palette and 1-bit images are replicated to 3 channels, alpha
    is composited over ``alpha_background``, CMYK/YCbCr/LAB are converted
    by Pillow, high bit depths are scaled by :func:`to_uint8` and the EXIF
    orientation is applied.

    Args:
        path (str): The image file.
        depth_scaling (str): ``'fixed'`` or ``'minmax'``, see
            :func:`to_uint8`. Defaults to ``'fixed'``.
        alpha_background (sequence[int]): RGB colour under transparent
            pixels. Defaults to black.
        exif_orientation (bool): Rotate as the EXIF tag says. Defaults to
            True.

    Raises:
        ValueError: ``Cannot read image <path>: <reason>`` for missing,
            corrupt or truncated files.
    """
    try:
        with Image.open(path) as image:
            image.load()
            fmt = image.format
            if exif_orientation:
                image = ImageOps.exif_transpose(image)
            mode = image.mode
            if mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or (
                    mode == 'P' and 'transparency' in image.info):
                return _composite(image, alpha_background)
            if mode in ('RGB', 'L', 'P', '1', 'CMYK', 'YCbCr', 'LAB', 'HSV'):
                rgb = np.asarray(image.convert('RGB'))
                if (depth_scaling == 'minmax' and mode == 'RGB'
                        and fmt in ('PNG', 'TIFF')):
                    high = _high_depth_color(path)
                    if high is not None and high.shape == rgb.shape:
                        return to_uint8(high, depth_scaling)
                return rgb
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise ValueError(f'Cannot read image {path}: {exc}') from exc
    array = to_uint8(array, depth_scaling)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] > 3:
        array = array[..., :3]
    return np.ascontiguousarray(array)


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
