"""Image decoding, resizing and normalisation shared by training and serving.

This module depends only on numpy, OpenCV and Pillow, never on the rest of
dinov3_mm or torch: ``tools/deploy.py`` copies it verbatim next to the Triton
preprocessing model, so a server decodes, resizes and normalises an image with
exactly the code the test pipeline runs (``LoadImage``,
``ResizeKeepRatioPad``, the data preprocessors' mean/std).

A server also bounds what it decodes: :func:`check_image_limits` reads an
encoded image's declared size from its header (nothing is decoded) and
raises :class:`ImageRejected` above a pixel or byte limit.
"""
import contextlib
import io
import os
import re
import struct
from typing import BinaryIO, Optional, Sequence, Tuple, Union

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
#: Served limits (``tools/deploy.py --max-image-pixels/--max-image-bytes``).
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_MAX_IMAGE_BYTES = 32 * 1024 * 1024
# Pillow's plugin constructors signal "not my format" with these
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)
_OBJECT_REPR = re.compile(r'<[\w.]+ object at 0x[0-9a-fA-F]+>')


class ImageRejected(ValueError):
    """An image refused before decoding: above a pixel or byte limit.

    Attributes:
        kind (str): ``'pixels'`` or ``'bytes'``.
        value (int): The image's declared pixels or encoded bytes.
        limit (int): The limit it exceeds.
    """

    def __init__(self, message: str, kind: str, value: int, limit: int):
        super().__init__(message)
        self.kind, self.value, self.limit = kind, value, limit


def _bytes_text(num: int) -> str:
    return f'{num / 2**20:.1f} MiB' if num >= 2**20 else f'{num} bytes'


def _pixels_text(num: int) -> str:
    return f'{num / 1e6:.1f} MP' if num >= 100_000 else f'{num} pixels'


def check_image_bytes(num_bytes: int, max_bytes: Optional[int],
                      setting: str = '--max-image-bytes') -> None:
    """Refuse an encoded image longer than ``max_bytes`` (None: no limit).

    Raises:
        ImageRejected: ``image is 40.0 MiB encoded, above the 32.0 MiB
            limit (--max-image-bytes)`` (sizes under 1 MiB in bytes).
    """
    if max_bytes is not None and num_bytes > max_bytes:
        size, limit = _bytes_text(num_bytes), _bytes_text(max_bytes)
        if size == limit:
            size, limit = f'{num_bytes} bytes', f'{max_bytes} bytes'
        raise ImageRejected(
            f'image is {size} encoded, above the {limit} limit ({setting})',
            'bytes', num_bytes, max_bytes)


def check_image_pixels(width: int, height: int, max_pixels: Optional[int],
                       setting: str = '--max-image-pixels') -> None:
    """Refuse an image of more than ``max_pixels`` (None: no limit).

    Raises:
        ImageRejected: ``image is 12000x12000 = 144.0 MP, above the 40.0 MP
            limit (--max-image-pixels)``.
    """
    pixels = int(width) * int(height)
    if max_pixels is not None and pixels > max_pixels:
        raise ImageRejected(
            f'image is {width}x{height} = {_pixels_text(pixels)}, above the '
            f'{_pixels_text(max_pixels)} limit ({setting})', 'pixels',
            pixels, max_pixels)


def _plain(exc: BaseException) -> str:
    """An exception's message without object reprs such as file handles."""
    if isinstance(exc, UnidentifiedImageError):
        return 'not an image format Pillow can read'
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # errno errors also repr the path
    text = _OBJECT_REPR.sub('the data', str(exc)).strip()
    return text or type(exc).__name__


def _open_unchecked(fp: BinaryIO, filename: str = '') -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb check.

    Reads only the header, like ``Image.open``; the caller compares the
    declared size with its own limit (:func:`check_image_pixels`), so the
    refusal says which limit to raise instead of Pillow's warning or
    ``DecompressionBombError``.

    Raises:
        UnidentifiedImageError: No Pillow plugin accepts the data.
    """
    prefix = fp.read(16)
    tried = set()
    for load_plugins in (Image.preinit, Image.init):
        load_plugins()
        for fmt in [f for f in Image.ID if f not in tried]:
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            verdict = accept(prefix) if accept else True
            if not verdict or isinstance(verdict, str):
                continue
            fp.seek(0)
            try:
                return factory(fp, filename)
            except _NOT_THIS_FORMAT:
                continue
    raise UnidentifiedImageError('not an image format Pillow can read')


def _source_name(source: ImageSource) -> str:
    if isinstance(source, (bytes, bytearray)):
        return f'({len(source)} encoded bytes)'
    return str(source)


def _source_length(source: ImageSource) -> int:
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    return os.path.getsize(source)


def image_header_size(source: ImageSource) -> Tuple[int, int]:
    """The declared ``(width, height)`` of an encoded image.

    Reads the header only; nothing is decoded or allocated, whatever size
    the header declares.

    Args:
        source (str | bytes): An image file or its encoded bytes.

    Raises:
        ValueError: ``Cannot read image <name>: <reason>`` for empty data,
            a missing file or bytes no Pillow plugin reads.
    """
    name = _source_name(source)
    try:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise ValueError('empty image data')
            return _open_unchecked(io.BytesIO(source)).size
        with open(source, 'rb') as fp:
            return _open_unchecked(fp, str(source)).size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f'Cannot read image {name}: {_plain(exc)}') from exc


def check_image_limits(source: ImageSource,
                       max_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
                       max_bytes: Optional[int] = DEFAULT_MAX_IMAGE_BYTES
                       ) -> Tuple[int, int]:
    """Refuse an image above the limits before decoding it.

    The byte limit is checked first (on the length alone), then the pixels
    the header declares; nothing is decoded.

    Args:
        source (str | bytes): An image file or its encoded bytes.
        max_pixels (int, optional): Most ``width * height``; None: no limit.
            Defaults to :data:`DEFAULT_MAX_IMAGE_PIXELS` (40 MP).
        max_bytes (int, optional): Most encoded bytes; None: no limit.
            Defaults to :data:`DEFAULT_MAX_IMAGE_BYTES` (32 MiB).

    Returns:
        tuple[int, int]: The declared ``(width, height)``.

    Raises:
        ImageRejected: Above a limit; the message gives the size and the
            limit, e.g. ``image is 12000x12000 = 144.0 MP, above the 40.0
            MP limit (--max-image-pixels)``.
        ValueError: The data are not a readable image (see
            :func:`image_header_size`).
    """
    try:
        length = _source_length(source)
    except OSError as exc:
        raise ValueError(f'Cannot read image {source}: {_plain(exc)}') \
            from exc
    check_image_bytes(length, max_bytes)
    width, height = image_header_size(source)
    check_image_pixels(width, height, max_pixels)
    return width, height


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
               exif_orientation: bool = True,
               max_pixels: Optional[int] = None,
               max_bytes: Optional[int] = None) -> np.ndarray:
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
        max_pixels (int, optional): Refuse images whose header declares
            more pixels, before decoding; this check replaces Pillow's
            decompression-bomb guard. None (default) keeps Pillow's guard.
        max_bytes (int, optional): Refuse longer encoded data. Defaults to
            None (no limit).

    Raises:
        ImageRejected: Above ``max_pixels`` or ``max_bytes`` (a file's
            message starts with its path).
        ValueError: ``Cannot read image <path>: <reason>`` for missing,
            corrupt or truncated files (``(N encoded bytes)`` for bytes).
    """
    name = _source_name(source)
    try:
        if max_bytes is not None:
            check_image_bytes(_source_length(source), max_bytes)
        with _opened(source, max_pixels) as image:
            array = _decode(image, source, depth_scaling, alpha_background,
                            exif_orientation)
    except ImageRejected as exc:
        if isinstance(source, (bytes, bytearray)):
            raise
        raise ImageRejected(f'{name}: {exc}', exc.kind, exc.value,
                            exc.limit) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise ValueError(f'Cannot read image {name}: {_plain(exc)}') from exc
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        return array
    array = to_uint8(array, depth_scaling)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] > 3:
        array = array[..., :3]
    return np.ascontiguousarray(array)


@contextlib.contextmanager
def _opened(source: ImageSource, max_pixels: Optional[int]):
    """The lazily opened image; with ``max_pixels``, checked before use."""
    is_bytes = isinstance(source, (bytes, bytearray))
    if is_bytes and not source:
        raise ValueError('empty image data')
    if max_pixels is None:
        with Image.open(io.BytesIO(source) if is_bytes else source) as image:
            yield image
        return
    with (contextlib.nullcontext(io.BytesIO(source)) if is_bytes else
          open(source, 'rb')) as fp:
        with _open_unchecked(fp, '' if is_bytes else str(source)) as image:
            check_image_pixels(*image.size, max_pixels)
            yield image


def _decode(image: Image.Image, source: ImageSource, depth_scaling: str,
            alpha_background: Sequence[int],
            exif_orientation: bool) -> np.ndarray:
    """RGB uint8 for colour modes Pillow converts, else the raw array."""
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
    return np.asarray(image)


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

    Refuses the image above the spec's ``limits`` (checked on the length
    and the header, before decoding), decodes like ``LoadImage``, resizes
    and pads like ``ResizeKeepRatioPad`` and normalises like the data
    preprocessor.

    Args:
        data (bytes): The encoded image.
        spec (dict): ``decode``, ``resize`` and ``normalize`` entries, and
            optionally ``limits`` (``max_image_pixels``, ``max_image_bytes``;
            null: no limit; missing: :data:`DEFAULT_MAX_IMAGE_PIXELS`,
            :data:`DEFAULT_MAX_IMAGE_BYTES`).

    Returns:
        tuple: ``(3, H, W)`` float32 input and ``[ori_h, ori_w, top,
        bottom, left, right]``.

    Raises:
        ImageRejected: Above a limit.
        ValueError: The bytes are not a readable image.
    """
    decode, resize, norm = spec['decode'], spec['resize'], spec['normalize']
    limits = spec.get('limits') or {}
    img = read_image(
        data if isinstance(data, (bytes, bytearray)) else bytes(data),
        decode['depth_scaling'], decode['alpha_background'],
        decode['exif_orientation'],
        max_pixels=limits.get('max_image_pixels', DEFAULT_MAX_IMAGE_PIXELS),
        max_bytes=limits.get('max_image_bytes', DEFAULT_MAX_IMAGE_BYTES))
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
