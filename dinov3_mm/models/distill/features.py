"""What a backbone gives a distiller: a global vector and, maybe, a patch grid.

Three kinds of backbone are understood:

* ``'tokens'``: a backbone with ``forward_features`` (DINOv3ViT,
  DINOv3ConvNeXt): the global feature is ``x_norm_clstoken`` (for the
  ConvNeXt the normalised global average) and the grid is
  ``x_norm_patchtokens`` laid out on the image's patch grid (stride 16 for a
  ViT/16, 32 for a ConvNeXt).
* ``'featmap'``: any other backbone whose last ``forward`` output is a
  ``(B, C, h, w)`` map: the global feature is its spatial mean.
* ``'vector'``: a backbone whose last ``forward`` output is ``(B, C)``:
  a global feature only, no grid.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

KINDS = ('tokens', 'featmap', 'vector')


@dataclass(frozen=True)
class FeatureSpec:
    """How to read a backbone's features.

    Attributes:
        kind (str): One of :data:`KINDS`.
        width (int): Channels of the global feature (and of the grid).
    """
    kind: str
    width: int

    @property
    def dense(self) -> bool:
        """Whether the backbone gives a patch grid."""
        return self.kind != 'vector'


def _last_output(out):
    if isinstance(out, (tuple, list)):
        if not out:
            raise TypeError('the backbone returned an empty sequence')
        out = out[-1]
    if isinstance(out, dict):
        raise TypeError('the backbone returned a dict from forward; give it '
                        'a forward_features method instead')
    if not isinstance(out, Tensor):
        raise TypeError(f'the backbone returned a {type(out).__name__}')
    return out


def describe_backbone(backbone: nn.Module, probe_size: int = 64
                      ) -> FeatureSpec:
    """Find out what ``backbone`` outputs.

    A backbone with ``forward_features`` and an ``embed_dims`` attribute (an
    int, or per-stage list whose last entry counts) is read without running
    it; any other one runs once on a zero image of ``probe_size`` pixels
    (without autograd, in eval mode; its train flag is restored).

    Args:
        backbone (nn.Module): A built backbone.
        probe_size (int): Side of the probe image. Defaults to 64.

    Returns:
        FeatureSpec: The kind of output and its width.

    Raises:
        TypeError: The output is neither ``(B, C)`` nor ``(B, C, h, w)``.
    """
    dims = getattr(backbone, 'embed_dims', None)
    if callable(getattr(backbone, 'forward_features', None)) and dims:
        width = dims[-1] if isinstance(dims, (list, tuple)) else dims
        return FeatureSpec('tokens', int(width))
    channels = int(getattr(backbone, 'in_channels', 3))
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            param = next(backbone.parameters(), None)
            probe = torch.zeros(1, channels, probe_size, probe_size,
                                device=param.device if param is not None
                                else None)
            out = _last_output(backbone(probe))
    finally:
        backbone.train(was_training)
    if out.dim() == 4:
        return FeatureSpec('featmap', out.shape[1])
    if out.dim() == 2:
        return FeatureSpec('vector', out.shape[1])
    raise TypeError(f'a {tuple(out.shape)} output (expected (B, C) or '
                    '(B, C, h, w))')


def token_grid(num_tokens: int, height: int, width: int) -> Tuple[int, int]:
    """The ``(h, w)`` grid of ``num_tokens`` patches of an image.

    The stride is the one that divides the image area into ``num_tokens``
    cells (16 for a ViT/16, 32 for a ConvNeXt); ``h`` follows the image's
    aspect ratio.

    Raises:
        ValueError: No grid of that many cells fits the image's shape.
    """
    stride = math.sqrt(height * width / num_tokens)
    rows = max(1, round(height / stride))
    cols = num_tokens // rows
    if rows * cols != num_tokens:
        raise ValueError(
            f'{num_tokens} patch tokens do not form a grid on a '
            f'{height}x{width} image.')
    return rows, cols


def extract_features(backbone: nn.Module, spec: FeatureSpec,
                     images: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
    """Global feature ``(B, C)`` and patch grid ``(B, C, h, w)`` (or None).

    Args:
        backbone (nn.Module): The backbone described by ``spec``.
        spec (FeatureSpec): From :func:`describe_backbone`.
        images (Tensor): Normalised ``(B, 3, H, W)`` images.
    """
    if spec.kind == 'tokens':
        out = backbone.forward_features(images)
        patches = out['x_norm_patchtokens']
        rows, cols = token_grid(patches.shape[1], *images.shape[-2:])
        grid = patches.transpose(1, 2).reshape(patches.shape[0], -1, rows,
                                               cols)
        return out['x_norm_clstoken'], grid
    out = _last_output(backbone(images))
    if spec.kind == 'featmap':
        return out.mean((-2, -1)), out
    return out, None


__all__ = ['FeatureSpec', 'KINDS', 'describe_backbone', 'extract_features',
           'token_grid']
