"""Feature pyramids from plain (single-stride) ViT feature maps.

A DINOv3 ViT gives maps at stride 16 only (``DINOv3ViT(out_type='featmap')``).
Dense-prediction decoders want a pyramid at strides 4, 8, 16 and 32:

* :class:`SimpleFPN` (ViTDet, Li et al. 2022) builds all four levels from ONE
  map with transposed convolutions (up) and max pooling (down).
* :class:`MultiLevelNeck` resamples SEVERAL maps, taken from different
  blocks, each to its own stride (the official multi-layer recipe; for ViT-L
  the official code uses blocks ``[4, 11, 17, 23]``, see
  :func:`evenly_spaced_indices`).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from dinov3_mm.models.backbones.dinov3_convnext import LayerNorm2d
from dinov3_mm.registry import MODELS

Features = Union[Tensor, Sequence[Tensor]]

#: Official DINOv3 intermediate blocks of ViT-L (24 blocks) for dense tasks.
OFFICIAL_VITL_INDICES = [4, 11, 17, 23]


def evenly_spaced_indices(num_layers: int,
                          n: int = 4,
                          official: bool = True) -> List[int]:
    """Block indices to tap for multi-level dense features.

    Evenly spaced, ending at the last block: ``round((i + 1) * L / n) - 1``,
    e.g. ``[2, 5, 8, 11]`` for 12 blocks and ``[9, 19, 29, 39]`` for 40. For
    24 blocks (ViT-L) and ``n=4`` the official DINOv3 code uses
    ``[4, 11, 17, 23]`` instead of ``[5, 11, 17, 23]``; that is returned
    unless ``official=False``.

    Args:
        num_layers (int): Number of transformer blocks.
        n (int): Number of indices. Defaults to 4.
        official (bool): Use the official ViT-L choice. Defaults to True.

    Returns:
        list[int]: ``n`` increasing 0-based block indices.
    """
    if not 1 <= n <= num_layers:
        raise ValueError(f'Need 1 <= n <= num_layers, got n={n}, '
                         f'num_layers={num_layers}.')
    if official and num_layers == 24 and n == 4:
        return list(OFFICIAL_VITL_INDICES)
    return [int(round((i + 1) * num_layers / n)) - 1 for i in range(n)]


def build_norm2d(norm_cfg: Optional[dict], num_channels: int) -> nn.Module:
    """Build a normalisation layer for NCHW maps.

    Args:
        norm_cfg (dict, optional): ``type`` is one of ``'LN2d'`` (LayerNorm
            over channels, ``eps`` optional), ``'GN'`` (``num_groups``,
            default 32, reduced to a divisor of ``num_channels``), ``'BN'``,
            ``'SyncBN'``; ``None`` gives ``nn.Identity``.
        num_channels (int): Number of channels.

    Returns:
        nn.Module: The layer.
    """
    if norm_cfg is None:
        return nn.Identity()
    cfg = dict(norm_cfg)
    kind = cfg.pop('type')
    cfg.pop('requires_grad', None)
    if kind in ('LN2d', 'LN'):
        return LayerNorm2d(num_channels, **cfg)
    if kind == 'GN':
        groups = math.gcd(cfg.pop('num_groups', 32), num_channels)
        return nn.GroupNorm(groups, num_channels, **cfg)
    if kind == 'BN':
        return nn.BatchNorm2d(num_channels, **cfg)
    if kind == 'SyncBN':
        return nn.SyncBatchNorm(num_channels, **cfg)
    raise ValueError(f"Unknown norm type {kind!r}; use 'LN2d', 'GN', 'BN', "
                     "'SyncBN' or None.")


class ConvNormAct(nn.Sequential):
    """``Conv2d`` (bias only without norm) + norm + optional activation.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel size; padding keeps the size.
        norm_cfg (dict, optional): See :func:`build_norm2d`.
        act (bool | type): ``True`` for ReLU, a module class, or False.
        stride (int): Stride. Defaults to 1.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act=False,
                 stride: int = 1):
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=kernel_size // 2, bias=norm_cfg is None),
            build_norm2d(norm_cfg, out_channels)
        ]
        if act:
            layers.append(nn.ReLU(inplace=True) if act is True else act())
        super().__init__(*layers)


def build_resample(in_channels: int, scale: float,
                   norm_cfg: Optional[dict]) -> Tuple[nn.Module, int]:
    """ViTDet resampling of one map by a power-of-two ``scale``.

    ``scale = 2**k``: ``k > 0`` stacks ``k`` stride-2 transposed convs, each
    halving the channels, with norm + GELU between them; ``k = 0`` is the
    identity; ``k < 0`` is a ``2**-k`` max pool.

    Args:
        in_channels (int): Input channels.
        scale (float): Resize factor, a power of two.
        norm_cfg (dict, optional): Norm between the transposed convs.

    Returns:
        tuple[nn.Module, int]: The module and its output channels.
    """
    k = math.log2(scale)
    if scale <= 0 or k != int(k):
        raise ValueError(f'scale must be a power of two, got {scale}.')
    k = int(k)
    if k == 0:
        return nn.Identity(), in_channels
    if k < 0:
        return nn.MaxPool2d(kernel_size=2**-k, stride=2**-k), in_channels
    layers, channels = [], in_channels
    for i in range(k):
        out = max(channels // 2, 1)
        if i > 0:
            layers += [build_norm2d(norm_cfg, channels), nn.GELU()]
        layers.append(nn.ConvTranspose2d(channels, out, 2, stride=2))
        channels = out
    return nn.Sequential(*layers), channels


def _as_tuple(feats: Features) -> Tuple[Tensor, ...]:
    return (feats, ) if isinstance(feats, Tensor) else tuple(feats)


@MODELS.register_module()
class SimpleFPN(BaseModule):
    """ViTDet simple feature pyramid from one ViT feature map.

    ``(B, C, H/16, W/16)`` becomes maps at strides 4, 8, 16 and 32 (with the
    default ``scales``): each level resamples the map (transposed convs /
    max pool, :func:`build_resample`), then a 1x1 and a 3x3 conv with norm
    bring it to ``out_channels``.

    Args:
        in_channels (int): Channels of the ViT map. Defaults to 384.
        out_channels (int): Channels of every level. Defaults to 256.
        scales (Sequence[float]): Resize factors, powers of two. Defaults to
            ``(4, 2, 1, 0.5)``.
        norm_cfg (dict, optional): Norm, see :func:`build_norm2d`. Defaults
            to ``dict(type='LN2d')`` as ViTDet.
        in_index (int): Which map of a tuple input to use. Defaults to -1.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int = 384,
                 out_channels: int = 256,
                 scales: Sequence[float] = (4, 2, 1, 0.5),
                 norm_cfg: Optional[dict] = dict(type='LN2d'),
                 in_index: int = -1,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scales = tuple(scales)
        self.in_index = in_index
        self.stages = nn.ModuleList()
        for scale in self.scales:
            resample, channels = build_resample(in_channels, scale, norm_cfg)
            self.stages.append(
                nn.Sequential(
                    resample,
                    ConvNormAct(channels, out_channels, 1, norm_cfg),
                    ConvNormAct(out_channels, out_channels, 3, norm_cfg)))

    def forward(self, feats: Features) -> Tuple[Tensor, ...]:
        """Build the pyramid.

        Args:
            feats (Tensor | Sequence[Tensor]): A ``(B, C, h, w)`` map or the
                backbone's tuple (``in_index`` picks one).

        Returns:
            tuple[Tensor]: One ``(B, out_channels, h * s, w * s)`` map per
            scale ``s``.
        """
        x = _as_tuple(feats)[self.in_index]
        return tuple(stage(x) for stage in self.stages)


@MODELS.register_module()
class MultiLevelNeck(BaseModule):
    """Pyramid from several same-resolution ViT maps, one scale each.

    Map ``i`` (e.g. from blocks ``evenly_spaced_indices(24)`` =
    ``[4, 11, 17, 23]`` of ViT-L) is resampled by ``scales[i]``
    (:func:`build_resample`) and projected to ``out_channels`` by a 1x1 and
    a 3x3 conv with norm.

    Args:
        in_channels (Sequence[int]): Channels of each input map.
        out_channels (int): Channels of every output. Defaults to 256.
        scales (Sequence[float]): One power-of-two factor per input. Defaults
            to ``(4, 2, 1, 0.5)``.
        norm_cfg (dict, optional): See :func:`build_norm2d`. Defaults to
            ``dict(type='LN2d')``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 256,
                 scales: Sequence[float] = (4, 2, 1, 0.5),
                 norm_cfg: Optional[dict] = dict(type='LN2d'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, int):
            in_channels = [in_channels] * len(scales)
        if len(in_channels) != len(scales):
            raise ValueError(f'{len(in_channels)} in_channels for '
                             f'{len(scales)} scales.')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.scales = tuple(scales)
        self.stages = nn.ModuleList()
        for channels, scale in zip(self.in_channels, self.scales):
            resample, mid = build_resample(channels, scale, norm_cfg)
            self.stages.append(
                nn.Sequential(
                    resample,
                    ConvNormAct(mid, out_channels, 1, norm_cfg),
                    ConvNormAct(out_channels, out_channels, 3, norm_cfg)))

    def forward(self, feats: Features) -> Tuple[Tensor, ...]:
        """Resample each map to its scale.

        Args:
            feats (Sequence[Tensor]): ``len(in_channels)`` maps
                ``(B, C_i, h, w)``.

        Returns:
            tuple[Tensor]: ``(B, out_channels, h * s_i, w * s_i)`` maps.
        """
        feats = _as_tuple(feats)
        if len(feats) != len(self.stages):
            raise ValueError(f'MultiLevelNeck expects {len(self.stages)} '
                             f'maps, got {len(feats)}.')
        return tuple(stage(x) for stage, x in zip(self.stages, feats))
