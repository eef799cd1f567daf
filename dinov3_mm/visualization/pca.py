"""Colour patch features by their principal components."""
import numpy as np
import torch
from torch import Tensor


def pca_rgb(features: Tensor) -> np.ndarray:
    """Map patch features to RGB with a PCA fitted jointly over all images.

    Args:
        features (Tensor): ``(B, C, h, w)`` patch feature maps.

    Returns:
        np.ndarray: ``(B, h, w, 3)`` uint8 images; channel ``k`` is the
        ``k``-th principal component, min-max scaled over the batch.
    """
    if features.ndim != 4:
        raise ValueError(f'Expected (B, C, h, w) features, got shape '
                         f'{tuple(features.shape)}.')
    B, C, h, w = features.shape
    flat = features.float().permute(0, 2, 3, 1).reshape(-1, C)
    flat = flat - flat.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(flat, full_matrices=False)
    proj = flat @ v[:3].T
    lo, hi = proj.min(0).values, proj.max(0).values
    proj = (proj - lo) / (hi - lo).clamp_min(1e-8)
    return (proj.reshape(B, h, w, 3) * 255).round().byte().numpy()
