"""DINO multi-crop augmentation (two global and N local views of an image).

The photometric operations live in :mod:`.photometric`; packing the crops
into model inputs is :class:`~.formatting.PackMultiCropInputs`.

Follows ``DataAugmentationDINO`` of the official DINOv3 code
(``dinov3/data/augmentations.py``, defaults from the ``crops`` section of
``ssl_default_config.yaml``) without torchvision:

* every crop: random resized crop (torchvision's sampling, bicubic resize
  with antialiasing as Pillow does it, which is what torchvision applies to
  the PIL images of the official data loaders), horizontal flip with
  ``p=0.5``;
* then, per crop independently: colour jitter (brightness 0.4, contrast
  0.4, saturation 0.2, hue 0.1, in a random order, ``p=0.8``), grayscale
  (``p=0.2``), Gaussian blur (kernel 9, sigma uniform in ``[0.1, 2.0]``);
* the second global crop may also be solarized (threshold 128, ``p=0.2``).

Gaussian blur probabilities: the official code names ``p=1.0 / 0.1 / 0.5``
(first global / second global / local crops, as in BYOL and DINO), but its
``GaussianBlur`` passes ``1 - p`` to ``RandomApply``, so the released DINOv2
and DINOv3 checkpoints were trained with blur probabilities ``0.0 / 0.9 /
0.5`` (facebookresearch/dinov3 issue #286, confirmed by the maintainers).
``blur_probs`` here are plain probabilities of blurring; the default is the
nominal ``(1.0, 0.1, 0.5)`` and :data:`DINOV3_EFFECTIVE_BLUR_PROBS` gives the
behaviour of the released checkpoints.

All randomness comes from ``numpy``'s global generator, which mmengine
seeds per dataloader worker (``randomness=dict(seed=...)``), so runs are
reproducible.
"""
import logging
import math
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from PIL import Image

from ...registry import TRANSFORMS
from .photometric import (adjust_brightness, adjust_contrast,
                          adjust_hue, adjust_saturation, gaussian_blur,
                          solarize, to_grayscale)

#: Blur probabilities the released DINOv2/DINOv3 weights were trained with
#: (first global, second global, local crops); see the module docstring.
DINOV3_EFFECTIVE_BLUR_PROBS = (0.0, 0.9, 0.5)

#: Images whose shorter side is below this fraction of the global crop size
#: trigger a (one-time) warning: their crops are heavily upsampled.
TINY_IMAGE_FRACTION = 0.25

_RESAMPLE_BICUBIC = getattr(Image, 'Resampling', Image).BICUBIC


def _uniform(rng, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _randint(rng, low: int, high: int) -> int:
    """Integer in ``[low, high)`` from np.random / RandomState / Generator."""
    if hasattr(rng, 'integers'):
        return int(rng.integers(low, high))
    return int(rng.randint(low, high))


def random_resized_crop_box(height: int,
                            width: int,
                            scale: Sequence[float] = (0.08, 1.0),
                            ratio: Sequence[float] = (3 / 4, 4 / 3),
                            rng=None) -> Tuple[int, int, int, int]:
    """Sample a crop box as torchvision's ``RandomResizedCrop.get_params``.

    Up to 10 attempts draw an area fraction uniformly in ``scale`` and an
    aspect ratio (w/h) log-uniformly in ``ratio``; the first box that fits
    is placed uniformly at random. If none fits, the largest centred box with
    the ratio clamped to ``ratio`` is returned.

    Args:
        height (int): Image height.
        width (int): Image width.
        scale (sequence[float]): Range of the crop area as a fraction of the
            image area.
        ratio (sequence[float]): Range of the aspect ratio ``w / h``.
        rng: ``numpy.random`` (default, the global generator), a
            ``RandomState`` or a ``Generator``.

    Returns:
        tuple[int, int, int, int]: ``(top, left, h, w)``.
    """
    rng = np.random if rng is None else rng
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * _uniform(rng, scale[0], scale[1])
        aspect = math.exp(_uniform(rng, log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = _randint(rng, 0, height - h + 1)
            left = _randint(rng, 0, width - w + 1)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    h, w = max(min(h, height), 1), max(min(w, width), 1)
    return (height - h) // 2, (width - w) // 2, h, w


def _check_range(name: str, value: Sequence[float], low: float,
                 high: float) -> Tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f'{name}={value!r} must be a pair (min, max).')
    if not (low < lo <= hi <= high):
        raise ValueError(f'{name}={value!r} must satisfy {low} < min <= max '
                         f'<= {high}.')
    return lo, hi


def _check_prob(name: str, value: float) -> float:
    if not 0 <= float(value) <= 1:
        raise ValueError(f'{name}={value!r} must be a probability in [0, 1].')
    return float(value)


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value <= 0:
        raise ValueError(f'{name}={value!r} must be a positive integer.')
    return int(value)


@TRANSFORMS.register_module()
class DINOMultiCrop(BaseTransform):
    """Two global and ``local_crops_number`` local crops of ``img``.

    See the module docstring for the augmentations and their official
    counterparts. Each crop is: crop → flip → colour jitter → grayscale →
    blur (→ solarize for global 2). The boxes and flips of all crops (global
    1, global 2, locals) are drawn before any photometric draw, so for a
    given seed the geometry does not depend on the photometric settings.

    Small images: a crop covers a *fraction of the image area* (``scale``)
    and is then resized to the crop size, so images smaller than the crop
    size are upsampled (blurry, but valid). Images whose shorter side is
    below ``global_crops_size / 4`` get a one-time warning (per transform
    instance, i.e. per dataloader worker) naming the file.

    Required Keys:

    - img (np.uint8 ``(H, W, 3)`` RGB, or ``(H, W)`` gray)

    Optional Keys:

    - img_path (named in warnings and errors)

    Added Keys:

    - global_crops (list of 2 np.uint8 ``(G, G, 3)``)
    - local_crops (list of ``local_crops_number`` np.uint8 ``(L, L, 3)``)
    - global_crops_size (int, ``G``)
    - local_crops_size (int, ``L``)

    Args:
        global_crops_size (int): Side of the global crops. Defaults to 224.
        local_crops_size (int): Side of the local crops, at most
            ``global_crops_size``. Defaults to 96.
        global_crops_scale (tuple[float, float]): Area fraction range of the
            global crops, within ``(0, 1]``. Defaults to ``(0.32, 1.0)``.
        local_crops_scale (tuple[float, float]): Area fraction range of the
            local crops. Defaults to ``(0.05, 0.32)``.
        local_crops_number (int): Number of local crops (0 allowed).
            Defaults to 8.
        flip_prob (float): Horizontal flip probability. Defaults to 0.5.
        color_jitter (tuple[float, float, float, float]): Brightness,
            contrast, saturation (factors drawn in ``[max(0, 1 - v), 1 +
            v]``) and hue (shift in ``[-v, v]`` turns, ``v <= 0.5``).
            Defaults to ``(0.4, 0.4, 0.2, 0.1)``.
        color_jitter_prob (float): Defaults to 0.8.
        grayscale_prob (float): Defaults to 0.2.
        blur_probs (tuple[float, float, float]): Blur probability of the
            first global, second global and local crops. Defaults to the
            nominal ``(1.0, 0.1, 0.5)``; the released weights were trained
            with :data:`DINOV3_EFFECTIVE_BLUR_PROBS` ``(0.0, 0.9, 0.5)``.
        blur_sigma (tuple[float, float]): Range of the blur sigma.
            Defaults to ``(0.1, 2.0)``.
        solarize_prob (float): Solarize probability of the second global
            crop (threshold 128). Defaults to 0.2.
        photometric (bool): Apply colour jitter, grayscale, blur and
            solarize; False keeps only crops and flips. Defaults to True.
        blur_kernel_size (int): Odd Gaussian kernel size; 9 as in DINOv3.
            Defaults to 9.
    """

    def __init__(self,
                 global_crops_size: int = 224,
                 local_crops_size: int = 96,
                 global_crops_scale: Sequence[float] = (0.32, 1.0),
                 local_crops_scale: Sequence[float] = (0.05, 0.32),
                 local_crops_number: int = 8,
                 flip_prob: float = 0.5,
                 color_jitter: Sequence[float] = (0.4, 0.4, 0.2, 0.1),
                 color_jitter_prob: float = 0.8,
                 grayscale_prob: float = 0.2,
                 blur_probs: Sequence[float] = (1.0, 0.1, 0.5),
                 blur_sigma: Sequence[float] = (0.1, 2.0),
                 solarize_prob: float = 0.2,
                 photometric: bool = True,
                 blur_kernel_size: int = 9) -> None:
        self.global_crops_size = _check_size('global_crops_size',
                                             global_crops_size)
        self.local_crops_size = _check_size('local_crops_size',
                                            local_crops_size)
        if self.local_crops_size > self.global_crops_size:
            raise ValueError(
                f'local_crops_size={local_crops_size} is larger than '
                f'global_crops_size={global_crops_size}; local crops must not '
                'be larger than the global ones.')
        self.global_crops_scale = _check_range('global_crops_scale',
                                               global_crops_scale, 0, 1)
        self.local_crops_scale = _check_range('local_crops_scale',
                                              local_crops_scale, 0, 1)
        if (isinstance(local_crops_number, bool)
                or int(local_crops_number) != local_crops_number
                or local_crops_number < 0):
            raise ValueError(f'local_crops_number={local_crops_number!r} '
                             'must be an integer >= 0.')
        self.local_crops_number = int(local_crops_number)
        self.flip_prob = _check_prob('flip_prob', flip_prob)
        jitter = tuple(float(v) for v in color_jitter)
        if len(jitter) != 4 or min(jitter) < 0 or jitter[3] > 0.5:
            raise ValueError(
                f'color_jitter={color_jitter!r} must be four non-negative '
                '(brightness, contrast, saturation, hue) with hue <= 0.5.')
        self.color_jitter = jitter
        self.color_jitter_prob = _check_prob('color_jitter_prob',
                                             color_jitter_prob)
        self.grayscale_prob = _check_prob('grayscale_prob', grayscale_prob)
        probs = tuple(blur_probs)
        if len(probs) != 3:
            raise ValueError(f'blur_probs={blur_probs!r} must give three '
                             'probabilities (global 1, global 2, local).')
        self.blur_probs = tuple(_check_prob('blur_probs', p) for p in probs)
        self.blur_sigma = _check_range('blur_sigma', blur_sigma, 0,
                                       float('inf'))
        self.solarize_prob = _check_prob('solarize_prob', solarize_prob)
        self.photometric = bool(photometric)
        if (_check_size('blur_kernel_size', blur_kernel_size) % 2) == 0:
            raise ValueError(
                f'blur_kernel_size={blur_kernel_size} must be odd.')
        self.blur_kernel_size = int(blur_kernel_size)
        self._warned_tiny = False

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _coin(p: float) -> bool:
        """True with probability ``p`` (one draw from numpy.random)."""
        return bool(np.random.random() < p)

    def _crop(self, pil: Image.Image, size: int,
              scale: Tuple[float, float]) -> np.ndarray:
        width, height = pil.size
        top, left, h, w = random_resized_crop_box(height, width, scale)
        crop = pil.resize((size, size), _RESAMPLE_BICUBIC,
                          box=(left, top, left + w, top + h))
        out = np.array(crop)
        if self._coin(self.flip_prob):
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def _jitter(self, img: np.ndarray) -> np.ndarray:
        brightness, contrast, saturation, hue = self.color_jitter
        ops = []
        for index in np.random.permutation(4):
            if index == 0 and brightness > 0:
                ops.append((adjust_brightness,
                            _uniform(np.random, max(0, 1 - brightness),
                                     1 + brightness)))
            elif index == 1 and contrast > 0:
                ops.append((adjust_contrast,
                            _uniform(np.random, max(0, 1 - contrast),
                                     1 + contrast)))
            elif index == 2 and saturation > 0:
                ops.append((adjust_saturation,
                            _uniform(np.random, max(0, 1 - saturation),
                                     1 + saturation)))
            elif index == 3 and hue > 0:
                ops.append((adjust_hue, _uniform(np.random, -hue, hue)))
        for fn, factor in ops:
            img = fn(img, factor)
        return img

    def _distort(self, img: np.ndarray, blur_prob: float,
                 solarize_prob: float = 0.0) -> np.ndarray:
        if not self.photometric:
            return img
        if self._coin(self.color_jitter_prob):
            img = self._jitter(img)
        if self._coin(self.grayscale_prob):
            img = to_grayscale(img)
        if self._coin(blur_prob):
            sigma = _uniform(np.random, *self.blur_sigma)
            img = gaussian_blur(img, sigma, self.blur_kernel_size)
        if solarize_prob > 0 and self._coin(solarize_prob):
            img = solarize(img, 128)
        return img

    def _check_image(self, results: dict) -> np.ndarray:
        img = results.get('img')
        path = results.get('img_path', 'the image')
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            raise TypeError(
                f'DINOMultiCrop needs img as a uint8 numpy array (use '
                f'LoadImage); got {type(img).__name__} '
                f'{getattr(img, "dtype", "")} for {path}.')
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
            raise ValueError(f'DINOMultiCrop needs an (H, W, 3) RGB image; '
                             f'got shape {img.shape} for {path}.')
        limit = self.global_crops_size * TINY_IMAGE_FRACTION
        if min(img.shape[:2]) < limit and not self._warned_tiny:
            self._warned_tiny = True
            print_log(
                f'DINOMultiCrop: {path} is only {img.shape[1]}x'
                f'{img.shape[0]} pixels, below 1/4 of global_crops_size='
                f'{self.global_crops_size}; its crops are strongly '
                'upsampled. Further small images are not reported.',
                logger='current', level=logging.WARNING)
        return np.ascontiguousarray(img)

    # -- transform ---------------------------------------------------------
    def transform(self, results: dict) -> dict:
        """Add ``global_crops`` and ``local_crops`` to ``results``."""
        pil = Image.fromarray(self._check_image(results))
        # Geometry of every crop first, so that the crops (and flips) of a
        # seed do not depend on the photometric settings.
        g, scale = self.global_crops_size, self.global_crops_scale
        global1, global2 = self._crop(pil, g, scale), self._crop(pil, g, scale)
        local = [
            self._crop(pil, self.local_crops_size, self.local_crops_scale)
            for _ in range(self.local_crops_number)
        ]
        global1 = self._distort(global1, self.blur_probs[0])
        global2 = self._distort(global2, self.blur_probs[1],
                                self.solarize_prob)
        local = [self._distort(crop, self.blur_probs[2]) for crop in local]
        results['global_crops'] = [global1, global2]
        results['local_crops'] = local
        results['global_crops_size'] = g
        results['local_crops_size'] = self.local_crops_size
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'global_crops_size={self.global_crops_size}, '
                f'local_crops_size={self.local_crops_size}, '
                f'global_crops_scale={self.global_crops_scale}, '
                f'local_crops_scale={self.local_crops_scale}, '
                f'local_crops_number={self.local_crops_number}, '
                f'flip_prob={self.flip_prob}, '
                f'color_jitter={self.color_jitter}, '
                f'color_jitter_prob={self.color_jitter_prob}, '
                f'grayscale_prob={self.grayscale_prob}, '
                f'blur_probs={self.blur_probs}, '
                f'blur_sigma={self.blur_sigma}, '
                f'solarize_prob={self.solarize_prob}, '
                f'photometric={self.photometric}, '
                f'blur_kernel_size={self.blur_kernel_size})')
