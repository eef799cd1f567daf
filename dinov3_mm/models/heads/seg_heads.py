"""Semantic segmentation heads on DINOv3 feature maps.

The heads are pure: ``forward(feats)`` maps a tuple of ``(B, C_i, h_i, w_i)``
feature maps to logits ``(B, out_channels, h, w)``; resizing to the image and
the loss (:mod:`dinov3_mm.models.losses.seg_losses`) belong to the segmentor.
``out_channels`` is ``num_classes``, or 1 for binary segmentation with a
sigmoid (``num_classes=2, out_channels=1``).

* :class:`LinearSegHead`: BatchNorm + 1x1 conv, the official DINOv3 linear
  segmentation evaluation; logits at the first selected map's resolution.
* :class:`DPTHead`: DPT (Ranftl et al. 2021) reassemble + RefineNet fusion
  on same-resolution ViT maps; logits at 4x their resolution (stride 4 for
  patch size 16).
* :class:`UNetHead`: U-Net decoder over a pyramid (finest first); logits at
  the finest map's resolution.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from dinov3_mm.models.necks.simple_fpn import ConvNormAct, build_norm2d
from dinov3_mm.registry import MODELS

Features = Union[Tensor, Sequence[Tensor]]


def resize(x: Tensor, size, align_corners: bool = False) -> Tensor:
    """Bilinear resize of ``x`` to ``size``; a no-op when already there."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode='bilinear',
                         align_corners=align_corners)


class BaseSegHead(BaseModule):
    """Base of the segmentation heads: classifier, dropout, input selection.

    Subclasses compute a ``(B, channels, h, w)`` map and call
    :meth:`cls_seg`.

    Args:
        num_classes (int): Number of classes (2 for binary).
        channels (int): Width of the map fed to the classifier.
        out_channels (int, optional): Logit channels; ``num_classes`` or 1
            (binary, sigmoid). Defaults to ``num_classes``.
        dropout_ratio (float): Dropout before the classifier. Defaults to 0.1.
        align_corners (bool): For the internal bilinear resizes. Defaults to
            False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 num_classes: int,
                 channels: int,
                 out_channels: Optional[int] = None,
                 dropout_ratio: float = 0.1,
                 align_corners: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(
                f'num_classes must be positive, got {num_classes}.')
        out_channels = num_classes if out_channels is None else out_channels
        if out_channels != num_classes and not (out_channels == 1
                                                and num_classes == 2):
            raise ValueError('out_channels must be num_classes, or 1 with '
                             f'num_classes=2; got {out_channels} for '
                             f'{num_classes} classes.')
        self.num_classes = num_classes
        self.out_channels = out_channels
        self.channels = channels
        self.dropout_ratio = dropout_ratio
        self.align_corners = align_corners
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 \
            else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, out_channels, kernel_size=1)

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Dropout, then the 1x1 classifier."""
        return self.conv_seg(self.dropout(feat))

    @staticmethod
    def _as_tuple(feats: Features) -> Tuple[Tensor, ...]:
        return (feats, ) if isinstance(feats, Tensor) else tuple(feats)


@MODELS.register_module()
class LinearSegHead(BaseSegHead):
    """Linear segmentation head of the official DINOv3 evaluation.

    Selected maps are resized to the first one's size (bilinear),
    concatenated, batch-normalised and classified by a 1x1 conv.

    Args:
        in_channels (int | Sequence[int]): Channels of the selected maps
            (a list when ``in_index`` is a list).
        num_classes (int): Number of classes.
        in_index (int | Sequence[int]): Map(s) of the input tuple to use.
            Defaults to -1.
        dropout_ratio (float): Defaults to 0.1.
        norm_cfg (dict, optional): Norm on the concatenated map. Defaults to
            ``dict(type='BN')`` (the official code uses SyncBN).
        **kwargs: ``out_channels``, ``align_corners``, ``init_cfg``.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 num_classes: int,
                 in_index: Union[int, Sequence[int]] = -1,
                 dropout_ratio: float = 0.1,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 **kwargs):
        if isinstance(in_index, int) != isinstance(in_channels, int):
            raise ValueError('in_channels and in_index must both be ints or '
                             'both be lists.')
        total = in_channels if isinstance(in_channels, int) \
            else sum(in_channels)
        if not isinstance(in_index, int) and len(in_index) != len(in_channels):
            raise ValueError('in_channels and in_index differ in length.')
        super().__init__(num_classes, total, dropout_ratio=dropout_ratio,
                         **kwargs)
        self.in_channels = in_channels
        self.in_index = in_index
        self.bn = build_norm2d(norm_cfg, total)

    def forward(self, feats: Features) -> Tensor:
        """``(B, out_channels, h, w)`` logits at the first selected size."""
        feats = self._as_tuple(feats)
        if isinstance(self.in_index, int):
            x = feats[self.in_index]
        else:
            maps = [feats[i] for i in self.in_index]
            size = maps[0].shape[-2:]
            x = torch.cat(
                [resize(m, size, self.align_corners) for m in maps], dim=1)
        return self.cls_seg(self.bn(x))


class ResidualConvUnit(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3x3 convs (DPT / RefineNet)."""

    def __init__(self, channels: int, norm_cfg: Optional[dict] = None):
        super().__init__()
        self.conv1 = ConvNormAct(channels, channels, 3, norm_cfg)
        self.conv2 = ConvNormAct(channels, channels, 3, norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    """RefineNet-style fusion: ``rcu2(x + rcu1(skip))``, resize, 1x1 project.

    Args:
        channels (int): Width.
        norm_cfg (dict, optional): Norm in the residual units.
        align_corners (bool): For the resize.
    """

    def __init__(self, channels: int, norm_cfg: Optional[dict] = None,
                 align_corners: bool = False):
        super().__init__()
        self.res1 = ResidualConvUnit(channels, norm_cfg)
        self.res2 = ResidualConvUnit(channels, norm_cfg)
        self.project = nn.Conv2d(channels, channels, 1)
        self.align_corners = align_corners

    def forward(self, x: Tensor, skip: Optional[Tensor] = None,
                size=None) -> Tensor:
        """Fuse ``skip`` into ``x``, then resize to ``size`` if given."""
        if skip is not None:
            x = resize(x, skip.shape[-2:], self.align_corners) + \
                self.res1(skip)
        x = self.res2(x)
        if size is not None:
            x = resize(x, size, self.align_corners)
        return self.project(x)


@MODELS.register_module()
class DPTHead(BaseSegHead):
    """DPT head on four same-resolution ViT maps.

    Reassemble: map ``i`` is projected by a 1x1 conv to
    ``post_process_channels[i]`` and resampled to strides 4, 8, 16, 32
    (4x / 2x transposed conv, identity, stride-2 3x3 conv), then a 3x3 conv
    brings every level to ``channels``. Fusion blocks go from the coarsest
    level to the finest, each upsampling to the next level's size; a 3x3
    conv + ReLU and the classifier give logits at the finest level's size
    (4x the input maps).

    Args:
        in_channels (Sequence[int]): Channels of the four input maps.
        num_classes (int): Number of classes.
        channels (int): Fusion width. Defaults to 256.
        post_process_channels (Sequence[int]): Reassemble widths. Defaults
            to ``(96, 192, 384, 768)``.
        norm_cfg (dict, optional): Norm in the fusion units. Defaults to
            None (as DPT).
        dropout_ratio (float): Defaults to 0.1.
        **kwargs: ``out_channels``, ``align_corners``, ``init_cfg``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 channels: int = 256,
                 post_process_channels: Sequence[int] = (96, 192, 384, 768),
                 norm_cfg: Optional[dict] = None,
                 dropout_ratio: float = 0.1,
                 **kwargs):
        super().__init__(num_classes, channels, dropout_ratio=dropout_ratio,
                         **kwargs)
        if isinstance(in_channels, int):
            in_channels = [in_channels] * 4
        if len(in_channels) != 4 or len(post_process_channels) != 4:
            raise ValueError('DPTHead takes 4 maps and 4 '
                             'post_process_channels.')
        self.in_channels = list(in_channels)
        self.post_process_channels = list(post_process_channels)
        pp = self.post_process_channels
        self.projects = nn.ModuleList(
            nn.Conv2d(c, p, 1) for c, p in zip(self.in_channels, pp))
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(pp[0], pp[0], 4, stride=4),
            nn.ConvTranspose2d(pp[1], pp[1], 2, stride=2),
            nn.Identity(),
            nn.Conv2d(pp[3], pp[3], 3, stride=2, padding=1),
        ])
        self.convs = nn.ModuleList(
            nn.Conv2d(p, channels, 3, padding=1, bias=False) for p in pp)
        self.fusion_blocks = nn.ModuleList(
            FeatureFusionBlock(channels, norm_cfg, self.align_corners)
            for _ in range(4))
        self.fusion_blocks[0].res1 = None  # the coarsest level has no skip
        self.conv_out = ConvNormAct(channels, channels, 3, norm_cfg, act=True)

    def forward(self, feats: Features) -> Tensor:
        """Logits ``(B, out_channels, 4h, 4w)`` from 4 ``(B, C_i, h, w)``."""
        feats = self._as_tuple(feats)
        if len(feats) != 4:
            raise ValueError(f'DPTHead expects 4 maps, got {len(feats)}.')
        levels = [
            conv(rs(proj(x))) for x, proj, rs, conv in zip(
                feats, self.projects, self.resize_layers, self.convs)
        ]
        out = self.fusion_blocks[0](levels[3], size=levels[2].shape[-2:])
        for i in (2, 1, 0):
            size = levels[i - 1].shape[-2:] if i > 0 else None
            out = self.fusion_blocks[3 - i](out, levels[i], size=size)
        return self.cls_seg(self.conv_out(out))


@MODELS.register_module()
class UNetHead(BaseSegHead):
    """U-Net decoder over a feature pyramid.

    Starting from the coarsest map, each stage upsamples (bilinear) to the
    next finer map, concatenates it and applies two 3x3 conv + norm + ReLU;
    logits come at the finest map's resolution.

    Args:
        in_channels (Sequence[int]): Channels of the maps, finest first (e.g.
            a :class:`SimpleFPN` pyramid at strides 4..32).
        num_classes (int): Number of classes.
        channels (int | Sequence[int]): Decoder widths, one per stage from
            coarse to fine (``len(in_channels) - 1`` of them). Defaults to
            ``(256, 128, 64)``.
        norm_cfg (dict, optional): See
            :func:`~dinov3_mm.models.necks.simple_fpn.build_norm2d`. Defaults
            to ``dict(type='BN')``.
        dropout_ratio (float): Defaults to 0.1.
        **kwargs: ``out_channels``, ``align_corners``, ``init_cfg``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 channels: Union[int, Sequence[int]] = (256, 128, 64),
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 dropout_ratio: float = 0.1,
                 **kwargs):
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise ValueError('UNetHead needs at least two maps.')
        stages = len(in_channels) - 1
        if isinstance(channels, int):
            channels = [channels] * stages
        channels = list(channels)
        if len(channels) != stages:
            raise ValueError(f'{len(channels)} channels for {stages} decoder '
                             'stages (len(in_channels) - 1).')
        super().__init__(num_classes, channels[-1],
                         dropout_ratio=dropout_ratio, **kwargs)
        self.in_channels = in_channels
        self.decoder_channels = channels
        self.blocks = nn.ModuleList()
        width = in_channels[-1]
        for skip, out in zip(reversed(in_channels[:-1]), channels):
            self.blocks.append(
                nn.Sequential(
                    ConvNormAct(width + skip, out, 3, norm_cfg, act=True),
                    ConvNormAct(out, out, 3, norm_cfg, act=True)))
            width = out

    def forward(self, feats: Features) -> Tensor:
        """``(B, out_channels, h0, w0)`` logits at the finest map's size."""
        feats = self._as_tuple(feats)
        if len(feats) != len(self.in_channels):
            raise ValueError(f'UNetHead expects {len(self.in_channels)} '
                             f'maps, got {len(feats)}.')
        x = feats[-1]
        for block, skip in zip(self.blocks, reversed(feats[:-1])):
            x = resize(x, skip.shape[-2:], self.align_corners)
            x = block(torch.cat([x, skip], dim=1))
        return self.cls_seg(x)
