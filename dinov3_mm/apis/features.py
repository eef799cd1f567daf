"""Feature extraction from images with a DINOv3 backbone."""
from typing import Dict, Sequence

import numpy as np
import torch
from torch import nn

from dinov3_mm.models.normalization import get_normalization
from dinov3_mm.utils.cpu_bf16 import autocast_or_fp32


def images_to_tensor(images: Sequence[np.ndarray],
                     normalization: str = 'lvd1689m') -> torch.Tensor:
    """Stack RGB uint8 ``(H, W, 3)`` images into a normalised float batch.

    Args:
        images (Sequence[np.ndarray]): Same-sized RGB uint8 images.
        normalization (str): Preset of :func:`get_normalization`.
    """
    shapes = {img.shape for img in images}
    if len(shapes) != 1:
        raise ValueError(f'Images must share one size, got {sorted(shapes)}.')
    norm = get_normalization(normalization)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(norm['mean']).view(1, 3, 1, 1)
    std = torch.tensor(norm['std']).view(1, 3, 1, 1)
    return (batch - mean) / std


@torch.inference_mode()
def extract_features(backbone: nn.Module,
                     images: Sequence[np.ndarray],
                     normalization: str = 'lvd1689m',
                     bf16: bool = False) -> Dict[str, torch.Tensor]:
    """Class token and patch feature map of the backbone's last block.

    Args:
        backbone (nn.Module): A DINOv3 backbone with ``forward_features``.
        images (Sequence[np.ndarray]): RGB uint8 images of one size (a
            multiple of the patch size for the ViT).
        normalization (str): Normalisation preset. Defaults to ``'lvd1689m'``.
        bf16 (bool): Run under bf16 autocast. Defaults to False.

    Returns:
        dict: normalised ``cls`` (B, C) and ``patch`` (B, C, h, w) features,
        float32 on the CPU.
    """
    x = images_to_tensor(images, normalization)
    device = next(backbone.parameters()).device
    backbone.eval()
    with autocast_or_fp32(device.type, torch.bfloat16 if bf16 else None,
                          'bf16 features'):
        (patch, cls), = backbone.get_intermediate_layers(
            x.to(device), n=1, reshape=True, return_class_token=True)
    return {'cls': cls.float().cpu(), 'patch': patch.float().cpu()}
