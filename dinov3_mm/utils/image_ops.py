"""Image decoding, resizing and normalisation shared by training and serving.

This module depends only on numpy, OpenCV and Pillow, never on the rest of
dinov3_mm or torch: ``tools/deploy.py`` copies it verbatim next to the Triton
preprocessing model, so a server decodes, resizes and normalises an image with
exactly the code the test pipeline runs (``LoadImage``,
``ResizeKeepRatioPad``, the data preprocessors' mean/std).
"""
import io
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageSource = Union[str, bytes, bytearray]
DEPTH_SCALINGS = ('fixed', 'minmax')
INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}


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


def _high_depth_color(source: ImageSource) -> Optional[np.ndarray]:
    """16-bit colour PNG/TIFF data as RGB, which Pillow reduces to 8 bit."""
    if isinstance(source, (bytes, bytearray)):
        data = cv2.imdecode(np.frombuffer(source, np.uint8),
                            cv2.IMREAD_UNCHANGED)
    else:
        data = cv2.imread(source, cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype == np.uint8 or data.ndim != 3:
        return None
    return cv2.cvtColor(data[..., :3], cv2.COLOR_BGR2RGB)


def read_image(source: ImageSource,
               depth_scaling: str = 'fixed',
               alpha_background: Sequence[int] = (0, 0, 0),
               exif_orientation: bool = True) -> np.ndarray:
    """Read any common image file as an RGB uint8 ``(H, W, 3)`` array.

    Grayscale, palette and 1-bit images are replicated to 3 channels, alpha
    is composited over ``alpha_background``, CMYK/YCbCr/LAB are converted
    by Pillow, high bit depths are scaled by :func:`to_uint8` and the EXIF
    orientation is applied.

    Args:
        source (str | bytes): The image file, or its encoded bytes (as a
            server receives them).
        depth_scaling (str): ``'fixed'`` or ``'minmax'``, see
            :func:`to_uint8`. Defaults to ``'fixed'``.
        alpha_background (sequence[int]): RGB colour under transparent
            pixels. Defaults to black.
        exif_orientation (bool): Rotate as the EXIF tag says. Defaults to
            True.

    Raises:
        ValueError: ``Cannot read image <path>: <reason>`` for missing,
            corrupt or truncated files (``<encoded bytes>`` for bytes).
    """
    is_bytes = isinstance(source, (bytes, bytearray))
    name = f'<{len(source)} encoded bytes>' if is_bytes else source
    try:
        if is_bytes and not source:
            raise ValueError('empty image data')
        with Image.open(io.BytesIO(source) if is_bytes else source) as image:
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
                    high = _high_depth_color(source)
                    if high is not None and high.shape == rgb.shape:
                        return to_uint8(high, depth_scaling)
                return rgb
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise ValueError(f'Cannot read image {name}: {exc}') from exc
    array = to_uint8(array, depth_scaling)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] > 3:
        array = array[..., :3]
    return np.ascontiguousarray(array)


def _pad_widths(total: int, used: int, center: bool) -> Tuple[int, int]:
    extra = total - used
    before = extra // 2 if center else 0
    return before, extra - before


def resize_image(img: np.ndarray, new_hw: Tuple[int, int],
                 flag: int) -> np.ndarray:
    """``cv2.resize`` to ``(h, w)`` that keeps a trailing channel axis."""
    out = cv2.resize(img, (new_hw[1], new_hw[0]), interpolation=flag)
    if img.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def pad_image(img: np.ndarray, border: Tuple[int, int, int, int],
              value) -> np.ndarray:
    """Pad by ``(top, bottom, left, right)`` pixels with ``value``."""
    top, bottom, left, right = border
    out = np.empty((img.shape[0] + top + bottom,
                    img.shape[1] + left + right) + img.shape[2:],
                   dtype=img.dtype)
    out[...] = np.asarray(value, dtype=img.dtype)
    out[top:top + img.shape[0], left:left + img.shape[1]] = img
    return out


def keep_ratio_pad_geometry(
        hw: Tuple[int, int], size: Tuple[int, int], center: bool = True
) -> Tuple[Tuple[int, int], Tuple[int, int, int, int], float]:
    """Resized size, padding and scale of :func:`resize_keep_ratio_pad`.

    Returns:
        tuple: ``((new_h, new_w), (top, bottom, left, right), scale)``.
    """
    h, w = hw
    out_h, out_w = size
    scale = min(out_h / h, out_w / w)
    new_h = min(out_h, max(1, int(round(h * scale))))
    new_w = min(out_w, max(1, int(round(w * scale))))
    top, bottom = _pad_widths(out_h, new_h, center)
    left, right = _pad_widths(out_w, new_w, center)
    return (new_h, new_w), (top, bottom, left, right), scale


def resize_keep_ratio_pad(img: np.ndarray,
                          size: Tuple[int, int],
                          pad_val=0,
                          interpolation: str = 'bilinear',
                          center: bool = True
                          ) -> Tuple[np.ndarray, Tuple[int, int, int, int]]:
    """Fit ``img`` inside ``size`` keeping its aspect ratio, then pad.

    Shrinking with ``'bilinear'`` uses ``INTER_AREA`` against aliasing.

    Args:
        img (np.ndarray): ``(H, W[, C])`` image.
        size (tuple[int, int]): Output ``(h, w)``.
        pad_val (int | sequence[int]): Padding value(s). Defaults to 0.
        interpolation (str): A key of :data:`INTERPOLATIONS`.
        center (bool): Centre the content; False pads bottom/right.

    Returns:
        tuple: The ``size`` image and its ``(top, bottom, left, right)``
        padding.
    """
    new_hw, border, scale = keep_ratio_pad_geometry(img.shape[:2], size,
                                                    center)
    flag = INTERPOLATIONS[interpolation]
    if interpolation == 'bilinear' and scale < 1:
        flag = cv2.INTER_AREA
    return pad_image(resize_image(img, new_hw, flag), border, pad_val), border


def normalize_chw(img: np.ndarray, mean: Sequence[float],
                  std: Sequence[float], swap_rb: bool = False) -> np.ndarray:
    """``(H, W, 3)`` uint8 to a normalised ``(3, H, W)`` float32 array.

    Computes ``(x - mean) / std`` in float32 like the data preprocessors
    (mean/std on the 0-255 scale), after swapping R and B if ``swap_rb``.
    """
    x = img[..., ::-1] if swap_rb else img
    x = np.ascontiguousarray(x.transpose(2, 0, 1)).astype(np.float32)
    mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, np.float32).reshape(-1, 1, 1)
    return (x - mean) / std


def preprocess_encoded(data: bytes, spec: dict
                       ) -> Tuple[np.ndarray, list]:
    """Served preprocessing of one encoded image (see ``serving_spec``).

    Decodes like ``LoadImage``, resizes and pads like ``ResizeKeepRatioPad``
    and normalises like the data preprocessor.

    Args:
        data (bytes): The encoded image.
        spec (dict): ``decode``, ``resize`` and ``normalize`` entries.

    Returns:
        tuple: ``(3, H, W)`` float32 input and ``[ori_h, ori_w, top,
        bottom, left, right]``.

    Raises:
        ValueError: The bytes are not a readable image.
    """
    decode, resize, norm = spec['decode'], spec['resize'], spec['normalize']
    img = read_image(bytes(data), decode['depth_scaling'],
                     decode['alpha_background'], decode['exif_orientation'])
    if not decode['to_rgb']:
        img = np.ascontiguousarray(img[..., ::-1])
    ori_h, ori_w = img.shape[:2]
    img, border = resize_keep_ratio_pad(img, tuple(resize['size']),
                                        resize['pad_val'],
                                        resize['interpolation'],
                                        resize['center'])
    x = normalize_chw(img, norm['mean'], norm['std'], norm['swap_rb'])
    return x, [ori_h, ori_w, *border]


def restore_logits(logits: np.ndarray, meta: Sequence[int]) -> np.ndarray:
    """Undo the padding of ``(K, H, W)`` logits and resize to the original.

    Mirrors the segmentor's prediction: crop the content window, then
    bilinear resize (half-pixel centres) to ``(ori_h, ori_w)``.

    Args:
        logits (np.ndarray): ``(K, H, W)`` at the model input size.
        meta (sequence[int]): ``[ori_h, ori_w, top, bottom, left, right]``.
    """
    ori_h, ori_w, top, bottom, left, right = (int(v) for v in meta)
    h, w = logits.shape[-2:]
    crop = logits[:, top:h - bottom, left:w - right].astype(np.float32)
    if crop.shape[1:] == (ori_h, ori_w):
        return crop
    hwk = cv2.resize(np.ascontiguousarray(crop.transpose(1, 2, 0)),
                     (ori_w, ori_h), interpolation=cv2.INTER_LINEAR)
    return hwk.reshape(ori_h, ori_w, -1).transpose(2, 0, 1)


def logits_to_mask(logits: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``(K, H, W)`` logits to a uint8 class map (sigmoid threshold if K=1)."""
    if logits.shape[0] == 1:
        return (1 / (1 + np.exp(-logits[0])) > threshold).astype(np.uint8)
    return logits.argmax(0).astype(np.uint8)
