"""Multi-scale deformable attention (Deformable DETR) in plain PyTorch.

The official DINOv3 segmentation adapter uses the compiled CUDA operator of
Deformable DETR (``MultiScaleDeformableAttention``). Here the same sampling is
done with :func:`torch.nn.functional.grid_sample` (bilinear, zero padding,
``align_corners=False``), which is what the CUDA kernel computes: it runs on
any device, is differentiable with autograd and exports to ONNX.

Spatial shapes are Python ``(h, w)`` integer pairs, static per call: there is
no ``.item()`` on a shape tensor and no data-dependent control flow, so an
ONNX export (``torch.onnx.export(..., opset_version=17, dynamo=False)``)
gives a graph without ``If``/``Loop`` nodes (one ``GridSample`` per level).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SpatialShapes = Union[Sequence[Sequence[int]], Tensor]


def normalize_spatial_shapes(spatial_shapes: SpatialShapes
                             ) -> List[Tuple[int, int]]:
    """Spatial shapes as a list of Python ``(h, w)`` int pairs.

    A ``(L, 2)`` tensor (the official calling convention) is accepted for
    eager use and converted with ``tolist()``; pass Python ints when
    exporting, so that the shapes are static constants of the graph.

    Args:
        spatial_shapes (Sequence[Sequence[int]] | Tensor): ``(h, w)`` per
            level.

    Returns:
        list[tuple[int, int]]: The shapes.
    """
    if isinstance(spatial_shapes, Tensor):
        spatial_shapes = spatial_shapes.tolist()
    shapes = [(int(h), int(w)) for h, w in spatial_shapes]
    if not shapes:
        raise ValueError('spatial_shapes needs at least one level.')
    return shapes


def multi_scale_deformable_attention(value: Tensor,
                                     spatial_shapes: SpatialShapes,
                                     sampling_locations: Tensor,
                                     attention_weights: Tensor) -> Tensor:
    """Core of multi-scale deformable attention.

    Every query and head samples ``P`` points on each of the ``L`` value maps
    (bilinear interpolation, zero outside the map, pixel centres at
    ``(i + 0.5) / size``) and returns their weighted sum.

    Args:
        value (Tensor): ``(N, S, M, D)``: the ``L`` flattened (row-major)
            value maps concatenated, ``S = sum(h_l * w_l)``, ``M`` heads of
            ``D`` channels.
        spatial_shapes (Sequence[Sequence[int]] | Tensor): ``(h_l, w_l)`` of
            each level, see :func:`normalize_spatial_shapes`.
        sampling_locations (Tensor): ``(N, Lq, M, L, P, 2)`` normalised
            ``(x, y)`` locations, ``(0, 0)`` the top-left and ``(1, 1)`` the
            bottom-right corner of a map.
        attention_weights (Tensor): ``(N, Lq, M, L, P)`` weights (usually a
            softmax over the ``L * P`` samples).

    Returns:
        Tensor: ``(N, Lq, M * D)``.
    """
    shapes = normalize_spatial_shapes(spatial_shapes)
    _, _, num_heads, head_dims = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    if num_levels != len(shapes):
        raise ValueError(f'sampling_locations has {num_levels} levels but '
                         f'{len(shapes)} spatial shapes were given.')
    sizes = [h * w for h, w in shapes]
    if not torch.jit.is_tracing() and sum(sizes) != value.shape[1]:
        raise ValueError(f'value has {value.shape[1]} positions, but the '
                         f'spatial shapes {shapes} give {sum(sizes)}.')
    # grid_sample wants coordinates in [-1, 1].
    grids = sampling_locations * 2 - 1
    samples = []
    for level, ((h, w), level_value) in enumerate(
            zip(shapes, value.split(sizes, dim=1))):
        # (N, h*w, M, D) -> (N*M, D, h, w)
        level_value = level_value.permute(0, 2, 3, 1).reshape(
            -1, head_dims, h, w)
        # (N, Lq, M, P, 2) -> (N*M, Lq, P, 2)
        level_grid = grids[:, :, :, level].transpose(1, 2).reshape(
            -1, num_queries, num_points, 2)
        # (N*M, D, Lq, P)
        samples.append(
            F.grid_sample(level_value, level_grid, mode='bilinear',
                          padding_mode='zeros', align_corners=False))
    # (N*M, D, Lq, L*P)
    samples = torch.stack(samples, dim=-2).flatten(-2)
    # (N, Lq, M, L, P) -> (N*M, 1, Lq, L*P)
    weights = attention_weights.transpose(1, 2).reshape(
        -1, 1, num_queries, num_levels * num_points)
    out = (samples * weights).sum(-1)  # (N*M, D, Lq)
    out = out.reshape(-1, num_heads * head_dims, num_queries)
    return out.transpose(1, 2)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention module (Deformable DETR).

    Each query predicts, per head, level and point, an offset around its
    reference point and an attention weight (softmax over the
    ``n_levels * n_points`` samples of the head); the sampled values (a
    linear projection of the input to ``int(d_model * ratio)`` channels) are
    combined by :func:`multi_scale_deformable_attention` and projected back
    to ``d_model``.

    Args:
        d_model (int): Query / input / output channels. Defaults to 256.
        n_levels (int): Number of value levels. Defaults to 4.
        n_heads (int): Number of heads. Defaults to 8.
        n_points (int): Sampling points per head and level. Defaults to 4.
        ratio (float): Value channels relative to ``d_model`` (the official
            DINOv3 adapter uses 0.5). Defaults to 1.
    """

    def __init__(self,
                 d_model: int = 256,
                 n_levels: int = 4,
                 n_heads: int = 8,
                 n_points: int = 4,
                 ratio: float = 1.0):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f'd_model ({d_model}) must be divisible by '
                             f'n_heads ({n_heads}).')
        value_dims = int(d_model * ratio)
        if value_dims <= 0 or value_dims % n_heads != 0:
            raise ValueError(f'The value channels int(d_model * ratio) = '
                             f'int({d_model} * {ratio}) = {value_dims} must '
                             f'be a positive multiple of n_heads ({n_heads}).')
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.ratio = ratio
        self.value_dims = value_dims
        self.sampling_offsets = nn.Linear(d_model,
                                          n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model,
                                           n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, value_dims)
        self.output_proj = nn.Linear(value_dims, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Deformable DETR initialisation.

        Offsets start as a fixed pattern: head ``m`` looks along the
        direction ``2 * pi * m / n_heads`` (scaled so that its largest
        coordinate is 1), point ``p`` at distance ``p + 1`` pixels, on every
        level; attention starts uniform; projections are Xavier-uniform.
        """
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (
            2.0 * math.pi / self.n_heads)
        directions = torch.stack([thetas.cos(), thetas.sin()], -1)
        directions = directions / directions.abs().max(-1, keepdim=True)[0]
        scales = torch.arange(1, self.n_points + 1, dtype=torch.float32)
        grid = directions[:, None, None, :] * scales[None, None, :, None]
        grid = grid.expand(self.n_heads, self.n_levels, self.n_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self,
                query: Tensor,
                reference_points: Tensor,
                input_flatten: Tensor,
                spatial_shapes: SpatialShapes,
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend from ``query`` to the flattened multi-level input.

        Args:
            query (Tensor): ``(N, Lq, d_model)``.
            reference_points (Tensor): ``(N or 1, Lq, n_levels, 2)``
                normalised ``(x, y)`` in ``[0, 1]``, or ``(..., 4)`` boxes
                ``(cx, cy, w, h)`` (offsets then scale with the box size).
            input_flatten (Tensor): ``(N, S, d_model)``, the levels
                flattened row-major and concatenated.
            spatial_shapes (Sequence[Sequence[int]] | Tensor): ``(h, w)`` of
                each level (Python ints for ONNX export).
            padding_mask (Tensor, optional): ``(N, S)``, True where the
                input is padding (its value is zeroed).

        Returns:
            Tensor: ``(N, Lq, d_model)``.
        """
        shapes = normalize_spatial_shapes(spatial_shapes)
        if len(shapes) != self.n_levels:
            raise ValueError(f'MSDeformAttn has n_levels={self.n_levels} but '
                             f'got {len(shapes)} spatial shapes.')
        batch, num_queries, _ = query.shape
        value = self.value_proj(input_flatten)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.0)
        value = value.reshape(batch, -1, self.n_heads,
                              self.value_dims // self.n_heads)
        offsets = self.sampling_offsets(query).reshape(
            batch, num_queries, self.n_heads, self.n_levels, self.n_points, 2)
        weights = self.attention_weights(query).reshape(
            batch, num_queries, self.n_heads, self.n_levels * self.n_points)
        weights = weights.softmax(-1).reshape(batch, num_queries,
                                              self.n_heads, self.n_levels,
                                              self.n_points)
        if reference_points.shape[-1] == 2:
            # Offsets are in pixels of each level: divide by (w, h).
            normalizer = query.new_tensor([[w, h] for h, w in shapes])
            locations = (reference_points[:, :, None, :, None, :] +
                         offsets / normalizer[None, None, None, :, None, :])
        elif reference_points.shape[-1] == 4:
            locations = (reference_points[:, :, None, :, None, :2] +
                         offsets / self.n_points *
                         reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError('The last dim of reference_points must be 2 or '
                             f'4, got {reference_points.shape[-1]}.')
        out = multi_scale_deformable_attention(value, shapes, locations,
                                               weights)
        return self.output_proj(out)
