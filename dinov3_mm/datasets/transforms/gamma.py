"""Gamma correction, an intensity augmentation suited to MRI and CT."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


def adjust_gamma(img: np.ndarray, gamma: float) -> np.ndarray:
    """``255 * (img / 255) ** gamma`` on a uint8 image, via a lookup table."""
    if img.dtype != np.uint8:
        raise TypeError(f'adjust_gamma expects a uint8 image, got '
                        f'{img.dtype}.')
    if gamma <= 0:
        raise ValueError(f'gamma={gamma} must be > 0.')
    table = np.clip(
        np.rint(255.0 * (np.arange(256) / 255.0)**gamma), 0,
        255).astype(np.uint8)
    return table[img]


@TRANSFORMS.register_module()
class GammaCorrection(BaseTransform):
    """Randomly apply ``out = 255 * (img / 255) ** gamma`` to ``img`` only.

    ``gamma < 1`` brightens, ``gamma > 1`` darkens; masks are untouched.

    Required Keys:

    - img (np.uint8)

    Modified Keys:

    - img (np.uint8, same shape)

    Added Keys:

    - gamma (the value applied, 1.0 when skipped)

    Args:
        gamma_range (tuple[float, float]): ``gamma`` is drawn uniformly
            from it (log-uniformly, so brightening and darkening are
            equally likely around 1). Defaults to ``(0.75, 1.5)``.
        gamma (float, optional): A fixed gamma instead of the range.
        prob (float): Probability of applying. Defaults to 0.5.
    """

    def __init__(self,
                 gamma_range: Sequence[float] = (0.75, 1.5),
                 gamma: Optional[float] = None,
                 prob: float = 0.5) -> None:
        if gamma is not None and gamma <= 0:
            raise ValueError(f'GammaCorrection: gamma={gamma} must be > 0.')
        lo, hi = (float(gamma_range[0]), float(gamma_range[1]))
        if not 0 < lo <= hi:
            raise ValueError(f'GammaCorrection: gamma_range={gamma_range} '
                             'must be (low, high) with 0 < low <= high.')
        if not 0 <= prob <= 1:
            raise ValueError(f'GammaCorrection: prob={prob} not in [0, 1].')
        self.gamma_range = (lo, hi)
        self.gamma = gamma
        self.prob = prob

    def transform(self, results: dict) -> dict:
        """Maybe apply a gamma to ``img``."""
        if self.prob < 1 and np.random.rand() >= self.prob:
            results['gamma'] = 1.0
            return results
        if self.gamma is not None:
            gamma = float(self.gamma)
        else:
            lo, hi = self.gamma_range
            gamma = float(np.exp(np.random.uniform(np.log(lo), np.log(hi))))
        results['img'] = adjust_gamma(results['img'], gamma)
        results['gamma'] = gamma
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(gamma_range={self.gamma_range}, '
                f'gamma={self.gamma}, prob={self.prob})')
