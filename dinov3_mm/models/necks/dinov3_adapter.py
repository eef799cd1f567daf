"""ViT-Adapter neck of the official DINOv3 segmentation (Mask2Former) model.

The official ``DINOv3_Adapter`` (``dinov3/eval/segmentation/models/backbone/
dinov3_adapter.py``) runs the frozen ViT once, takes the tokens of a few
blocks (the *interaction indexes*) and turns them into a four-level pyramid:

1. A small CNN on the image, the :class:`SpatialPriorModule`, gives ``c1``
   (stride 4) and ``c2``, ``c3``, ``c4`` (strides 8, 16, 32), all projected to
   the adapter width; ``c2..c4`` get a learnt level embedding and are
   flattened and concatenated into one query sequence ``c``.
2. For every interaction ``i``, an :class:`Extractor` lets ``c`` attend to the
   tokens of block ``i`` (multi-scale deformable cross-attention with one
   value level, then a :class:`ConvFFN` whose depthwise 3x3 conv runs on each
   pyramid level); the last interaction has two extra extractors.
3. ``c`` is split back into ``c2..c4``, ``c1 += up(c2)`` (a 2x2 transposed
   conv), the ViT maps of the interactions are resized to the four strides
   and added, and each level is normalised.

Here the neck receives the ViT maps from the segmentor instead of owning the
backbone: ``DINOv3Segmentor`` calls ``neck(feats, inputs)`` (the neck says so
with ``needs_inputs = True``), with ``feats`` the output of
``DINOv3ViT(out_type='featmap', out_indices=interaction_indexes)``. Freezing
the ViT, as the official code does, is the backbone's business
(``frozen_stages``).

The optional :class:`Injector` is the other half of the original ViT-Adapter
(Chen et al. 2023): the ViT tokens attend to the pyramid and the result is
added with a learnt, zero-initialised gate. The official DINOv3 adapter has
no injector (it is off by default). Since the ViT already ran, the injection
changes the features the adapter reads (by the extractors and the final
addition), not the input of later ViT blocks.

Module and parameter names follow the official module: its state dict, less
the ``backbone.`` entries, loads strictly (with ``norm_cfg`` ``BN`` or
``SyncBN``) and then gives the same outputs for the same ViT features.

Deformable attention is the plain PyTorch
:class:`~dinov3_mm.models.layers.ms_deform_attn.MSDeformAttn` (no compiled
operator), and spatial shapes are Python ints, so the neck runs on CPU and
exports to ONNX.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import Tensor, nn

from dinov3_mm.models.layers.ms_deform_attn import MSDeformAttn
from dinov3_mm.models.necks.simple_fpn import ConvNormAct, build_norm2d
from dinov3_mm.registry import MODELS

Shape = Tuple[int, int]

#: LayerNorm epsilon of the official adapter's attention blocks.
LN_EPS = 1e-6


def _hw(x: Tensor) -> Shape:
    """Static ``(h, w)`` of an NCHW map as Python ints."""
    return int(x.shape[-2]), int(x.shape[-1])


def get_reference_points(spatial_shapes: Sequence[Shape],
                         device: Optional[torch.device] = None,
                         dtype: torch.dtype = torch.float32) -> Tensor:
    """Normalised pixel centres of every position of every level.

    Args:
        spatial_shapes (Sequence[tuple[int, int]]): ``(h, w)`` per level.
        device (torch.device, optional): Device of the result.
        dtype (torch.dtype): Dtype of the result. Defaults to float32.

    Returns:
        Tensor: ``(1, sum(h * w), 1, 2)`` ``(x, y)`` points,
        ``((j + 0.5) / w, (i + 0.5) / h)`` in row-major order per level.
    """
    refs = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
        ref_y, ref_x = torch.meshgrid(ys, xs, indexing='ij')
        refs.append(torch.stack((ref_x.reshape(-1), ref_y.reshape(-1)), -1))
    return torch.cat(refs, 0)[None, :, None]


def _tokens_to_map(tokens: Tensor, shape: Shape) -> Tensor:
    """``(B, h * w, C)`` -> ``(B, C, h, w)``."""
    return tokens.transpose(1, 2).reshape(-1, tokens.shape[-1], *shape)


def _map_to_tokens(x: Tensor) -> Tensor:
    """``(B, C, h, w)`` -> ``(B, h * w, C)``."""
    return x.flatten(2).transpose(1, 2)


def _maybe_checkpoint(fn, enabled: bool, *args: Tensor):
    """Run ``fn(*args)``, with activation checkpointing if ``enabled`` and
    gradients are being recorded (never while tracing)."""
    if (enabled and torch.is_grad_enabled() and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()):
        return cp.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class DWConv(nn.Module):
    """Depthwise 3x3 conv applied to each level of a flattened pyramid.

    Args:
        dim (int): Channels.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x: Tensor, spatial_shapes: Sequence[Shape]) -> Tensor:
        """``(B, sum(h * w), C)`` -> same shape, level by level."""
        parts = x.split([h * w for h, w in spatial_shapes], dim=1)
        return torch.cat([
            _map_to_tokens(self.dwconv(_tokens_to_map(part, shape)))
            for part, shape in zip(parts, spatial_shapes)
        ], dim=1)


class ConvFFN(nn.Module):
    """``fc1 -> depthwise 3x3 conv -> GELU -> fc2`` on pyramid tokens.

    Args:
        in_features (int): Input and output channels.
        hidden_features (int): Hidden channels.
        drop (float): Dropout after the activation and after ``fc2``.
            Defaults to 0.
    """

    def __init__(self, in_features: int, hidden_features: int,
                 drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.dwconv = DWConv(hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, spatial_shapes: Sequence[Shape]) -> Tensor:
        """``(B, sum(h * w), C)`` -> same shape."""
        x = self.drop(self.act(self.dwconv(self.fc1(x), spatial_shapes)))
        return self.drop(self.fc2(x))


class SpatialPriorModule(nn.Module):
    """Convolutional stem giving the adapter's spatial prior at 4 strides.

    A ResNet-like stem (three 3x3 convs, the first with stride 2, then a
    stride-2 max pool) gives stride 4; three stride-2 3x3 convs give strides
    8, 16 and 32 (``inplanes``, ``2x``, ``4x``, ``4x`` channels); a 1x1 conv
    per level projects to ``embed_dims``. Odd sizes round up.

    Args:
        inplanes (int): Stem width. Defaults to 64.
        embed_dims (int): Output channels. Defaults to 384.
        norm_cfg (dict, optional): See
            :func:`~dinov3_mm.models.necks.simple_fpn.build_norm2d`
            (``SyncBN`` in the official code). Defaults to ``dict(type='BN')``.
        in_channels (int): Image channels. Defaults to 3.
        with_cp (bool): Activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 inplanes: int = 64,
                 embed_dims: int = 384,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 in_channels: int = 3,
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        # Flattened so that the parameter names match the official module.
        self.stem = nn.Sequential(
            *ConvNormAct(in_channels, inplanes, 3, norm_cfg, act=True,
                         stride=2),
            *ConvNormAct(inplanes, inplanes, 3, norm_cfg, act=True),
            *ConvNormAct(inplanes, inplanes, 3, norm_cfg, act=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.conv2 = ConvNormAct(inplanes, 2 * inplanes, 3, norm_cfg,
                                 act=True, stride=2)
        self.conv3 = ConvNormAct(2 * inplanes, 4 * inplanes, 3, norm_cfg,
                                 act=True, stride=2)
        self.conv4 = ConvNormAct(4 * inplanes, 4 * inplanes, 3, norm_cfg,
                                 act=True, stride=2)
        self.fc1 = nn.Conv2d(inplanes, embed_dims, 1)
        self.fc2 = nn.Conv2d(2 * inplanes, embed_dims, 1)
        self.fc3 = nn.Conv2d(4 * inplanes, embed_dims, 1)
        self.fc4 = nn.Conv2d(4 * inplanes, embed_dims, 1)

    def _forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        c1 = self.stem(x)
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        return self.fc1(c1), self.fc2(c2), self.fc3(c3), self.fc4(c4)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Image ``(B, 3, H, W)`` -> four ``(B, embed_dims, ., .)`` maps at
        strides 4, 8, 16, 32."""
        return _maybe_checkpoint(self._forward, self.with_cp, x)


class Extractor(nn.Module):
    """Pyramid queries read the ViT tokens: deformable cross-attention + FFN.

    ``c = c + attn(norm(c), norm(x))`` then
    ``c = c + drop_path(ffn(norm(c)))``; each query attends around its own
    position (its pixel centre) on the ViT map(s).

    Args:
        dim (int): Channels of queries and features.
        num_heads (int): Attention heads. Defaults to 6.
        n_points (int): Sampling points per head and level. Defaults to 4.
        n_levels (int): Levels of the attended features. Defaults to 1.
        deform_ratio (float): Value channels of the attention relative to
            ``dim``. Defaults to 1.
        with_cffn (bool): Add the :class:`ConvFFN`. Defaults to True.
        cffn_ratio (float): Hidden channels of the FFN relative to ``dim``.
            Defaults to 0.25.
        drop (float): FFN dropout. Defaults to 0.
        drop_path (float): Stochastic depth of the FFN branch. Defaults to 0.
        with_cp (bool): Activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 6,
                 n_points: int = 4,
                 n_levels: int = 1,
                 deform_ratio: float = 1.0,
                 with_cffn: bool = True,
                 cffn_ratio: float = 0.25,
                 drop: float = 0.,
                 drop_path: float = 0.,
                 with_cp: bool = False):
        super().__init__()
        self.query_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.feat_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = MSDeformAttn(d_model=dim, n_levels=n_levels,
                                 n_heads=num_heads, n_points=n_points,
                                 ratio=deform_ratio)
        self.with_cffn = with_cffn
        self.with_cp = with_cp
        if with_cffn:
            hidden = int(dim * cffn_ratio)
            if hidden <= 0:
                raise ValueError(f'cffn_ratio={cffn_ratio} gives no hidden '
                                 f'channels for dim={dim}.')
            self.ffn = ConvFFN(dim, hidden, drop=drop)
            self.ffn_norm = nn.LayerNorm(dim, eps=LN_EPS)
            self.drop_path = (DropPath(drop_path)
                              if drop_path > 0. else nn.Identity())

    def forward(self, query: Tensor, reference_points: Tensor, feat: Tensor,
                feat_shapes: Sequence[Shape],
                query_shapes: Sequence[Shape]) -> Tensor:
        """Update the queries.

        Args:
            query (Tensor): ``(B, Lq, dim)`` flattened pyramid tokens.
            reference_points (Tensor): ``(1, Lq, 1, 2)`` query positions.
            feat (Tensor): ``(B, S, dim)`` flattened ViT tokens.
            feat_shapes (Sequence[tuple[int, int]]): ``(h, w)`` of the
                levels of ``feat``.
            query_shapes (Sequence[tuple[int, int]]): ``(h, w)`` of the
                levels of ``query`` (for the FFN's depthwise conv).

        Returns:
            Tensor: ``(B, Lq, dim)``.
        """

        def inner(query: Tensor, feat: Tensor) -> Tensor:
            query = query + self.attn(self.query_norm(query),
                                      reference_points, self.feat_norm(feat),
                                      feat_shapes)
            if self.with_cffn:
                query = query + self.drop_path(
                    self.ffn(self.ffn_norm(query), query_shapes))
            return query

        return _maybe_checkpoint(inner, self.with_cp, query, feat)


class Injector(nn.Module):
    """ViT tokens read the pyramid: ``x + gamma * attn(norm(x), norm(c))``.

    From the original ViT-Adapter; not part of the official DINOv3 adapter.
    ``gamma`` (per channel) starts at ``init_values`` (0), so the injector
    starts as the identity.

    Args:
        dim (int): Channels.
        num_heads (int): Attention heads. Defaults to 6.
        n_points (int): Sampling points per head and level. Defaults to 4.
        n_levels (int): Pyramid levels attended to. Defaults to 3.
        deform_ratio (float): Value channels relative to ``dim``.
            Defaults to 1.
        init_values (float): Initial ``gamma``. Defaults to 0.
        with_cp (bool): Activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 6,
                 n_points: int = 4,
                 n_levels: int = 3,
                 deform_ratio: float = 1.0,
                 init_values: float = 0.,
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.query_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.feat_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = MSDeformAttn(d_model=dim, n_levels=n_levels,
                                 n_heads=num_heads, n_points=n_points,
                                 ratio=deform_ratio)
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, query: Tensor, reference_points: Tensor, feat: Tensor,
                feat_shapes: Sequence[Shape]) -> Tensor:
        """``(B, Lq, dim)`` ViT tokens updated from ``(B, S, dim)`` pyramid
        tokens (levels ``feat_shapes``); ``reference_points`` are
        ``(1, Lq, 1, 2)``."""

        def inner(query: Tensor, feat: Tensor) -> Tensor:
            attn = self.attn(self.query_norm(query), reference_points,
                             self.feat_norm(feat), feat_shapes)
            return query + self.gamma * attn

        return _maybe_checkpoint(inner, self.with_cp, query, feat)


class InteractionBlock(nn.Module):
    """One interaction: optional :class:`Injector`, then :class:`Extractor`
    (s).

    Args:
        dim (int): Channels.
        num_heads (int): Attention heads. Defaults to 6.
        n_points (int): Sampling points. Defaults to 4.
        deform_ratio (float): Value channel ratio. Defaults to 1.
        with_cffn (bool): Extractor FFN. Defaults to True.
        cffn_ratio (float): Extractor FFN ratio. Defaults to 0.25.
        drop (float): FFN dropout. Defaults to 0.
        drop_path (float): Stochastic depth of the FFN branches.
            Defaults to 0.
        extra_extractor (bool): Two more extractors after the first (the
            official adapter's last interaction). Defaults to False.
        use_injector (bool): Add an :class:`Injector`. Defaults to False.
        init_values (float): Injector gate init. Defaults to 0.
        num_levels (int): Pyramid levels of the queries. Defaults to 3.
        with_cp (bool): Activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 6,
                 n_points: int = 4,
                 deform_ratio: float = 1.0,
                 with_cffn: bool = True,
                 cffn_ratio: float = 0.25,
                 drop: float = 0.,
                 drop_path: float = 0.,
                 extra_extractor: bool = False,
                 use_injector: bool = False,
                 init_values: float = 0.,
                 num_levels: int = 3,
                 with_cp: bool = False):
        super().__init__()
        self.injector = (Injector(dim, num_heads, n_points, num_levels,
                                  deform_ratio, init_values, with_cp)
                         if use_injector else None)

        def extractor() -> Extractor:
            return Extractor(dim, num_heads, n_points, 1, deform_ratio,
                             with_cffn, cffn_ratio, drop, drop_path, with_cp)

        self.extractor = extractor()
        self.extra_extractors = (nn.ModuleList(
            [extractor() for _ in range(2)]) if extra_extractor else None)

    def forward(self, x: Tensor, c: Tensor, x_shape: Shape,
                c_shapes: Sequence[Shape], x_refs: Optional[Tensor],
                c_refs: Tensor) -> Tuple[Tensor, Tensor]:
        """Interact.

        Args:
            x (Tensor): ``(B, h * w, dim)`` ViT tokens of one block.
            c (Tensor): ``(B, Lc, dim)`` flattened pyramid.
            x_shape (tuple[int, int]): ``(h, w)`` of the ViT map.
            c_shapes (Sequence[tuple[int, int]]): Pyramid level shapes.
            x_refs (Tensor, optional): ``(1, h * w, 1, 2)`` ViT token
                positions (needed only with the injector).
            c_refs (Tensor): ``(1, Lc, 1, 2)`` pyramid token positions.

        Returns:
            tuple[Tensor, Tensor]: Updated ``x`` (changed only by the
            injector) and ``c``.
        """
        if self.injector is not None:
            x = self.injector(x, x_refs, c, c_shapes)
        extractors = [self.extractor]
        if self.extra_extractors is not None:
            extractors += list(self.extra_extractors)
        for extractor in extractors:
            c = extractor(c, c_refs, x, [x_shape], c_shapes)
        return x, c


def vit_feature_indices(num_interactions: int,
                        num_levels: int = 4) -> List[int]:
    """Which interaction's ViT map is added to each pyramid level.

    Evenly spaced from the first to the last interaction:
    ``[0, 1, 2, 3]`` for 4 interactions (the official mapping), ``[0, 0, 0,
    0]`` for 1, ``[0, 0, 1, 1]`` for 2, ``[0, 2, 3, 5]`` for 6.

    Args:
        num_interactions (int): Number of ViT maps.
        num_levels (int): Number of pyramid levels. Defaults to 4.

    Returns:
        list[int]: One interaction index per level, finest level first.
    """
    if num_levels == 1:
        return [num_interactions - 1]
    step = (num_interactions - 1) / (num_levels - 1)
    return [int(math.floor(j * step + 0.5)) for j in range(num_levels)]


@MODELS.register_module()
class DINOv3Adapter(BaseModule):
    """ViT-Adapter neck of the official DINOv3 dense (Mask2Former) model.

    Takes the ViT maps of the interaction blocks and the image, returns a
    pyramid at strides 4, 8, 16 and 32 with ``embed_dims`` channels (see the
    module docstring for the data flow).

    Config as in the official segmentation model (``interaction_indexes``
    are the backbone's ``out_indices``, e.g. ``[4, 11, 17, 23]`` for ViT-L,
    ``[9, 19, 29, 39]`` for ViT-7B)::

        backbone=dict(type='DINOv3ViT', arch='large', out_type='featmap',
                      out_indices=[4, 11, 17, 23], frozen_stages=24),
        neck=dict(type='DINOv3Adapter', in_channels=1024, num_heads=16,
                  norm_cfg=dict(type='SyncBN'), with_cp=True),

    Args:
        in_channels (int | Sequence[int]): Channels of the ViT maps (one
            value for all, or one per interaction). Defaults to 1024.
        embed_dims (int, optional): Adapter width and output channels; maps
            with other channels are projected by a 1x1 conv. Defaults to
            ``in_channels`` (the official adapter uses the ViT width).
        num_interactions (int, optional): Number of ViT maps (interaction
            blocks). Defaults to ``len(in_channels)`` for a sequence, else 4.
        num_heads (int): Deformable attention heads. Defaults to 16.
        n_points (int): Sampling points per head and level. Defaults to 4.
        deform_ratio (float): Value channels of the attention relative to
            ``embed_dims``. Defaults to 0.5.
        conv_inplanes (int): Width of the spatial prior stem. Defaults to 64.
        with_cffn (bool): ConvFFN in the extractors. Defaults to True.
        cffn_ratio (float): ConvFFN hidden ratio. Defaults to 0.25.
        extra_extractor (bool): Two extra extractors in the last
            interaction. Defaults to True.
        use_injector (bool): Add ViT-Adapter injectors (not in the official
            DINOv3 adapter; they change the ViT features the adapter reads,
            not later ViT blocks). Defaults to False.
        init_values (float): Initial injector gate. Defaults to 0.
        add_vit_feature (bool): Add the resized ViT maps to the pyramid
            (interaction ``i`` to level ``i`` for 4 interactions, see
            :func:`vit_feature_indices`). Defaults to True.
        norm_cfg (dict, optional): Norm of the spatial prior module and of
            the outputs, see
            :func:`~dinov3_mm.models.necks.simple_fpn.build_norm2d`
            (official: ``SyncBN``). Defaults to ``dict(type='BN')``.
        drop_path_rate (float): Stochastic depth of every extractor FFN
            (the same rate everywhere, as official). Defaults to 0.3.
        with_cp (bool): Activation checkpointing of the injectors and
            extractors (official: True). Defaults to False.
        img_channels (int): Image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine init config.
    """

    #: The segmentor passes the images as the second argument.
    needs_inputs = True

    def __init__(self,
                 in_channels: Union[int, Sequence[int]] = 1024,
                 embed_dims: Optional[int] = None,
                 num_interactions: Optional[int] = None,
                 num_heads: int = 16,
                 n_points: int = 4,
                 deform_ratio: float = 0.5,
                 conv_inplanes: int = 64,
                 with_cffn: bool = True,
                 cffn_ratio: float = 0.25,
                 extra_extractor: bool = True,
                 use_injector: bool = False,
                 init_values: float = 0.,
                 add_vit_feature: bool = True,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 drop_path_rate: float = 0.3,
                 with_cp: bool = False,
                 img_channels: int = 3,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, int):
            num_interactions = (4 if num_interactions is None else
                                num_interactions)
            in_channels = [in_channels] * max(num_interactions, 0)
        else:
            in_channels = [int(c) for c in in_channels]
            if num_interactions is None:
                num_interactions = len(in_channels)
            elif num_interactions != len(in_channels):
                raise ValueError(
                    f'num_interactions={num_interactions} but in_channels '
                    f'has {len(in_channels)} entries; give one channel '
                    'count per interaction (ViT map).')
        if num_interactions < 1:
            raise ValueError('DINOv3Adapter needs at least one interaction '
                             f'(ViT map), got num_interactions='
                             f'{num_interactions}.')
        embed_dims = in_channels[0] if embed_dims is None else embed_dims
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by '
                             f'num_heads ({num_heads}).')
        value_dims = int(embed_dims * deform_ratio)
        if value_dims <= 0 or value_dims % num_heads != 0:
            raise ValueError(
                f'int(embed_dims * deform_ratio) = int({embed_dims} * '
                f'{deform_ratio}) = {value_dims} must be a positive multiple '
                f'of num_heads ({num_heads}).')
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.num_interactions = num_interactions
        self.num_heads = num_heads
        self.add_vit_feature = add_vit_feature
        self.use_injector = use_injector
        self.with_cp = with_cp

        self.input_proj = nn.ModuleList([
            nn.Identity() if c == embed_dims else nn.Conv2d(c, embed_dims, 1)
            for c in in_channels
        ])
        self.level_embed = nn.Parameter(torch.zeros(3, embed_dims))
        self.spm = SpatialPriorModule(conv_inplanes, embed_dims, norm_cfg,
                                      in_channels=img_channels)
        self.interactions = nn.ModuleList([
            InteractionBlock(
                embed_dims,
                num_heads=num_heads,
                n_points=n_points,
                deform_ratio=deform_ratio,
                with_cffn=with_cffn,
                cffn_ratio=cffn_ratio,
                drop_path=drop_path_rate,
                extra_extractor=extra_extractor
                and i == num_interactions - 1,
                use_injector=use_injector,
                init_values=init_values,
                with_cp=with_cp) for i in range(num_interactions)
        ])
        self.up = nn.ConvTranspose2d(embed_dims, embed_dims, 2, 2)
        self.norm1 = build_norm2d(norm_cfg, embed_dims)
        self.norm2 = build_norm2d(norm_cfg, embed_dims)
        self.norm3 = build_norm2d(norm_cfg, embed_dims)
        self.norm4 = build_norm2d(norm_cfg, embed_dims)
        self.vit_feature_indices = vit_feature_indices(num_interactions)
        self._reset_parameters()

    # ------------------------------------------------------------ init
    @staticmethod
    def _init_module(m: nn.Module) -> None:
        """Official initialisation of one layer."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm,
                            nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_out = (m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                       // m.groups)
            nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def _reset_parameters(self) -> None:
        """Official scheme: trunc-normal linears, He-normal (fan-out) convs,
        Deformable DETR attention init, standard-normal level embedding;
        injector gates keep ``init_values``."""
        for part in (self.up, self.spm, self.interactions, self.input_proj):
            part.apply(self._init_module)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m._reset_parameters()
        nn.init.normal_(self.level_embed)

    # ------------------------------------------------------------ forward
    def forward(self, feats: Union[Tensor, Sequence[Tensor]],
                inputs: Tensor) -> Tuple[Tensor, ...]:
        """Build the pyramid.

        Args:
            feats (Tensor | Sequence[Tensor]): ``num_interactions`` ViT maps
                ``(B, in_channels[i], H / 16, W / 16)`` (backbone output with
                ``out_type='featmap'``).
            inputs (Tensor): Normalised images ``(B, 3, H, W)``, ``H`` and
                ``W`` multiples of 16.

        Returns:
            tuple[Tensor]: Four ``(B, embed_dims, H / s, W / s)`` maps for
            ``s = 4, 8, 16, 32`` (sizes rounded up for odd maps).
        """
        feats = (feats, ) if isinstance(feats, Tensor) else tuple(feats)
        if len(feats) != self.num_interactions:
            raise ValueError(
                f'DINOv3Adapter was built for {self.num_interactions} ViT '
                f'maps (num_interactions / in_channels) but got '
                f'{len(feats)}; the backbone out_indices must list one block '
                'per interaction.')
        if inputs.dim() != 4:
            raise ValueError('inputs must be an NCHW image batch, got shape '
                             f'{tuple(inputs.shape)}.')

        c1, c2, c3, c4 = self.spm(inputs)
        c_maps = (c2, c3, c4)
        c_shapes = [_hw(c) for c in c_maps]
        c = torch.cat([
            _map_to_tokens(m) + self.level_embed[i]
            for i, m in enumerate(c_maps)
        ], dim=1)
        x_shape = _hw(feats[0])
        c_refs = get_reference_points(c_shapes, c.device, c.dtype)
        x_refs = (get_reference_points([x_shape], c.device, c.dtype)
                  if self.use_injector else None)

        outs = []
        for i, (layer, feat) in enumerate(zip(self.interactions, feats)):
            if _hw(feat) != x_shape:
                raise ValueError('All ViT maps must have the same size, got '
                                 f'{x_shape} and {_hw(feat)}.')
            x = _map_to_tokens(self.input_proj[i](feat))
            x, c = layer(x, c, x_shape, c_shapes, x_refs, c_refs)
            outs.append(x)

        c2, c3, c4 = (_tokens_to_map(t, shape) for t, shape in zip(
            c.split([h * w for h, w in c_shapes], dim=1), c_shapes))
        up = self.up(c2)
        if _hw(up) != _hw(c1):  # only for sizes that are not multiples of 8
            up = F.interpolate(up, size=_hw(c1), mode='bilinear',
                               align_corners=False)
        c1 = up + c1
        pyramid = [c1, c2, c3, c4]

        if self.add_vit_feature:
            for level, idx in enumerate(self.vit_feature_indices):
                vit = _tokens_to_map(outs[idx], x_shape)
                size = _hw(pyramid[level])
                if size != x_shape:
                    vit = F.interpolate(vit, size=size, mode='bilinear',
                                        align_corners=False)
                pyramid[level] = pyramid[level] + vit

        norms = (self.norm1, self.norm2, self.norm3, self.norm4)
        return tuple(norm(m) for norm, m in zip(norms, pyramid))
