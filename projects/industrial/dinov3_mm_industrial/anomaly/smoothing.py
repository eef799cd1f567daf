"""Gaussian smoothing of anomaly maps."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> Tensor:
    """Normalised 1-D Gaussian of radius ``ceil(truncate * sigma)``.

    Args:
        sigma (float): Standard deviation in pixels (> 0).
        truncate (float): Radius in standard deviations. Defaults to 4, as
            ``scipy.ndimage.gaussian_filter``.

    Returns:
        Tensor: ``(2 * radius + 1,)`` float32 weights summing to 1.
    """
    if sigma <= 0:
        raise ValueError(f'sigma must be positive, got {sigma}.')
    radius = int(math.ceil(truncate * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma)**2)
    return (kernel / kernel.sum()).float()


def gaussian_blur(maps: Tensor, sigma: float, truncate: float = 4.0) -> Tensor:
    """Separable Gaussian blur of ``(B, H, W)`` maps with reflected borders.

    Args:
        maps (Tensor): ``(B, H, W)`` float maps.
        sigma (float): Standard deviation in pixels; ``0`` returns ``maps``.
        truncate (float): Kernel radius in standard deviations. Defaults
            to 4.

    Returns:
        Tensor: Blurred ``(B, H, W)`` maps (constant maps stay constant).
    """
    if maps.ndim != 3:
        raise ValueError(f'maps must be (B, H, W), got {tuple(maps.shape)}.')
    if sigma == 0:
        return maps
    kernel = gaussian_kernel1d(sigma, truncate).to(maps.device, maps.dtype)
    radius = kernel.numel() // 2
    x = maps.unsqueeze(1)
    # reflect padding needs radius < size; replicate covers tiny maps
    mode = ('reflect' if radius < min(maps.shape[-2:]) else 'replicate')
    x = F.pad(x, (radius, radius, 0, 0), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.squeeze(1)
