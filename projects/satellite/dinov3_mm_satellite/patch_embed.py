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
from torch import Tensor, nn

from dinov3_mm.models.backbones.weights import (CheckpointError, LoadReport,
                                                backbone_state_dict,
                                                read_checkpoint)

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


def load_pretrained_adapted(model: nn.Module,
                            path: str,
                            weight_key: str,
                            rgb_band_indices: Optional[BandMap] = None,
                            rescale: bool = True,
                            strict: bool = True,
                            prefix: Optional[str] = None) -> LoadReport:
    """Load any DINOv3 checkpoint into a backbone whose stem has other input
    channels, adapting ``weight_key`` with :func:`adapt_patch_embed_weight`.

    Reading and key translation are the core loader's
    (:func:`~dinov3_mm.models.backbones.weights.read_checkpoint`,
    :func:`~dinov3_mm.models.backbones.weights.backbone_state_dict`), so
    official, Hugging Face and dinov3_mm checkpoints all work.

    Args:
        model (nn.Module): The multispectral backbone.
        path (str): Checkpoint file or HF directory.
        weight_key (str): Key of the stem kernel, e.g.
            ``'patch_embed.proj.weight'``.
        rgb_band_indices, rescale: See :func:`adapt_patch_embed_weight`.
        strict (bool): Fail on missing or unexpected keys. Defaults to True.
        prefix (str, optional): Backbone prefix in whole-model checkpoints.

    Returns:
        LoadReport: What was loaded.

    Raises:
        CheckpointError: Unreadable file, other shape mismatches, or (strict)
            missing or unexpected keys.
    """
    ckpt = read_checkpoint(path)
    state_dict = backbone_state_dict(model, ckpt, prefix)
    own = model.state_dict()
    name = type(model).__name__
    if weight_key in state_dict and weight_key in own:
        src, dst = state_dict[weight_key], own[weight_key]
        if src.shape != dst.shape and src.shape[0] == dst.shape[0] and \
                src.shape[2:] == dst.shape[2:]:
            state_dict = dict(state_dict)
            state_dict[weight_key] = adapt_patch_embed_weight(
                src, dst.shape[1], rgb_band_indices, rescale).to(dst.dtype)
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if len(unexpected) == len(state_dict):
        raise CheckpointError(
            f'{path} ({ckpt.source} format) does not match {name}: none of '
            f'its keys are known (e.g. {sorted(state_dict)[:3]}).')
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(own[k].shape)}' for k in sorted(set(own) & set(state_dict))
        if state_dict[k].shape != own[k].shape
    ]
    if mismatched:
        raise CheckpointError(
            f'{path} does not fit {name}: {len(mismatched)} shape '
            f'mismatches, e.g. {"; ".join(mismatched[:3])}. Only the input '
            f'channels of {weight_key} are adapted; pick the arch the '
            'checkpoint was trained with.')
    report = LoadReport(path, ckpt.source,
                        len(set(own) & set(state_dict)), missing, unexpected)
    if strict and (missing or unexpected):
        raise CheckpointError(
            f'Strict load of {path} into {name} failed: {report}. Pass '
            "init_cfg=dict(type='Pretrained', strict=False, ...) to load the "
            'matching part.')
    model.load_state_dict(
        {k: v for k, v in state_dict.items() if k in own}, strict=False)
    return report


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
