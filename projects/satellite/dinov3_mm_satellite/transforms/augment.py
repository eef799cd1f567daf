"""Augmentations for multispectral images of any band count.

Albumentations' colour transforms expect 1 or 3 channels; these work on
``(H, W, B)`` float images. Both draw from numpy's global generator, which
mmengine seeds per dataloader worker.
"""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from dinov3_mm.registry import TRANSFORMS


def _seg_keys(results: dict) -> list:
    keys = list(results.get('seg_fields') or [])
    if 'gt_seg_map' not in keys:
        keys.append('gt_seg_map')
    return [k for k in keys if results.get(k) is not None]


@TRANSFORMS.register_module()
class RandomFlipRot90(BaseTransform):
    """Random horizontal/vertical flips and a multiple of 90 degree rotation
    of the image and its masks (overhead imagery has no "up").

    Required Keys:

    - img

    Modified Keys:

    - img, img_shape
    - gt_seg_map and the ``seg_fields`` (optional)

    Args:
        flip_prob (float): Probability of each flip. Defaults to 0.5.
        rotate (bool): Rotate by a random multiple of 90 degrees. Defaults
            to True.
    """

    def __init__(self, flip_prob: float = 0.5, rotate: bool = True) -> None:
        if not 0 <= flip_prob <= 1:
            raise ValueError(f'flip_prob={flip_prob} must be in [0, 1].')
        self.flip_prob = flip_prob
        self.rotate = rotate

    def transform(self, results: dict) -> dict:
        """Flip and rotate the image and masks together."""
        ops = []
        if np.random.rand() < self.flip_prob:
            ops.append(lambda a: a[:, ::-1])
        if np.random.rand() < self.flip_prob:
            ops.append(lambda a: a[::-1])
        k = int(np.random.randint(4)) if self.rotate else 0
        if k:
            ops.append(lambda a: np.rot90(a, k, axes=(0, 1)))
        if not ops:
            return results
        keys = ['img'] + _seg_keys(results)
        for key in keys:
            array = results[key]
            for op in ops:
                array = op(array)
            results[key] = np.ascontiguousarray(array)
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(flip_prob={self.flip_prob}, '
                f'rotate={self.rotate})')


@TRANSFORMS.register_module()
class SpectralJitter(BaseTransform):
    """Per-band gain and offset jitter plus Gaussian noise:
    ``img * gain_b + offset_b + N(0, noise_std)``.

    Place it after :class:`NormalizeBands`; ``offset_range`` and
    ``noise_std`` are then in units of each band's std.

    Required Keys:

    - img (``(H, W, B)`` float)

    Modified Keys:

    - img (float32)

    Args:
        gain_range (tuple[float, float]): Range of the per-band gain.
            Defaults to ``(0.9, 1.1)``.
        offset_range (float): Offsets are drawn from ``[-offset_range,
            offset_range]``. Defaults to 0.1.
        noise_std (float): Std of the additive noise. Defaults to 0.02.
        prob (float): Probability of applying. Defaults to 0.5.
    """

    def __init__(self,
                 gain_range: Sequence[float] = (0.9, 1.1),
                 offset_range: float = 0.1,
                 noise_std: float = 0.02,
                 prob: float = 0.5) -> None:
        gain: Tuple[float, ...] = tuple(float(g) for g in gain_range)
        if len(gain) != 2 or not 0 < gain[0] <= gain[1]:
            raise ValueError(f'gain_range={gain_range} must be (low, high) '
                             'with 0 < low <= high.')
        if offset_range < 0 or noise_std < 0 or not 0 <= prob <= 1:
            raise ValueError('offset_range and noise_std must be >= 0 and '
                             'prob in [0, 1].')
        self.gain_range = gain
        self.offset_range = float(offset_range)
        self.noise_std = float(noise_std)
        self.prob = prob

    def transform(self, results: dict) -> dict:
        """Jitter every band."""
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].astype(np.float32)
        bands = img.shape[-1] if img.ndim == 3 else 1
        gain = np.random.uniform(*self.gain_range, size=bands)
        offset = np.random.uniform(-self.offset_range, self.offset_range,
                                   size=bands)
        img = img * gain.astype(np.float32) + offset.astype(np.float32)
        if self.noise_std > 0:
            img += np.random.normal(0, self.noise_std,
                                    img.shape).astype(np.float32)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(gain_range={self.gain_range}, '
                f'offset_range={self.offset_range}, '
                f'noise_std={self.noise_std}, prob={self.prob})')
