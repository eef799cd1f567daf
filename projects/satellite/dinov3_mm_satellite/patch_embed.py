"""Adapting RGB-pretrained patch-embedding (stem) kernels to N input bands.

The rule, for a pretrained kernel ``W`` of shape ``(D, 3, k, k)`` (R, G, B
input channels) and ``N`` input bands:

1. a band that is one of R, G or B (``rgb_band_indices``) copies that
   channel's kernel;
2. every other band gets the mean of the three RGB kernels;
3. the whole kernel is multiplied by ``3 / N``.

Step 3 keeps the activation scale: if the bands carry similar normalised
signal, the response of the patch embedding is a sum over ``N`` band
kernels instead of 3. For ``N = 3`` with R, G, B at positions 0, 1, 2 the
kernel is unchanged. The bias is kept. More generally a ``C``-channel source
kernel is adapted with ``C / N`` and the mean over its ``C`` channels.
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

BandMap = Sequence[Optional[int]]


def check_band_map(rgb_band_indices: BandMap, in_channels: int,
                   src_channels: int = 3) -> List[Optional[int]]:
    """Validate ``rgb_band_indices`` (input band of each source channel).

    Args:
        rgb_band_indices (Sequence[int | None]): For source channel ``c``
            (R, G, B), the input band that holds it, or None when absent.
        in_channels (int): Input bands of the adapted kernel.
        src_channels (int): Channels of the source kernel. Defaults to 3.

    Raises:
        ValueError: Wrong length, an index outside ``[0, in_channels)`` or a
            band used twice.
    """
    mapping = [None if i is None else int(i) for i in rgb_band_indices]
    if len(mapping) != src_channels:
        raise ValueError(
            f'rgb_band_indices={tuple(rgb_band_indices)} needs one entry per '
            f'pretrained input channel ({src_channels}); use None for a '
            'channel the bands do not contain.')
    used = [i for i in mapping if i is not None]
    if any(not 0 <= i < in_channels for i in used):
        raise ValueError(
            f'rgb_band_indices={tuple(rgb_band_indices)} points outside the '
            f'{in_channels} input bands.')
    if len(set(used)) != len(used):
        raise ValueError(
            f'rgb_band_indices={tuple(rgb_band_indices)} maps two '
            'pretrained channels to one band.')
    return mapping


def default_band_map(in_channels: int,
                     src_channels: int = 3) -> List[Optional[int]]:
    """R, G, B at bands 0, 1, 2 (those that exist)."""
    return [c if c < in_channels else None for c in range(src_channels)]


def adapt_patch_embed_weight(weight: Tensor,
                             in_channels: int,
                             rgb_band_indices: Optional[BandMap] = None,
                             rescale: bool = True) -> Tensor:
    """Build an ``in_channels``-band kernel from an RGB-pretrained one.

    Args:
        weight (Tensor): ``(D, C, kh, kw)`` pretrained kernel (C = 3 for RGB).
        in_channels (int): Bands of the new kernel.
        rgb_band_indices (Sequence[int | None], optional): Input band holding
            each source channel (see :func:`check_band_map`). Defaults to R,
            G, B at bands 0, 1, 2.
        rescale (bool): Multiply by ``C / in_channels``. Defaults to True.

    Returns:
        Tensor: ``(D, in_channels, kh, kw)`` kernel (a new tensor).
    """
    if weight.ndim != 4:
        raise ValueError(f'Expected a (D, C, kh, kw) kernel, got shape '
                         f'{tuple(weight.shape)}.')
    if in_channels < 1:
        raise ValueError(f'in_channels must be positive, got {in_channels}.')
    src = weight.shape[1]
    mapping = check_band_map(
        default_band_map(in_channels, src)
        if rgb_band_indices is None else rgb_band_indices, in_channels, src)
    mean_kernel = weight.mean(dim=1)
    out = mean_kernel.unsqueeze(1).repeat(1, in_channels, 1, 1)
    for channel, band in enumerate(mapping):
        if band is not None:
            out[:, band] = weight[:, channel]
    if rescale:
        out = out * (src / in_channels)
    return out.contiguous()


def adapt_state_dict(state_dict: Dict[str, Tensor],
                     weight_key: str,
                     in_channels: int,
                     rgb_band_indices: Optional[BandMap] = None,
                     rescale: bool = True) -> Dict[str, Tensor]:
    """A copy of ``state_dict`` whose ``weight_key`` kernel has
    ``in_channels`` inputs (for converting checkpoints offline)."""
    out = dict(state_dict)
    if weight_key not in out:
        raise KeyError(f'{weight_key!r} is not in the state dict; its keys '
                       f'start with {sorted(out)[:5]}.')
    with torch.no_grad():
        out[weight_key] = adapt_patch_embed_weight(
            out[weight_key], in_channels, rgb_band_indices, rescale)
    return out
