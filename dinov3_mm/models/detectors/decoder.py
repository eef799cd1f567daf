"""Light DETR decoder: self-attention, multi-scale deformable cross-attention
and iterative box refinement (Deformable DETR, LW-DETR)."""
import copy
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..layers.ms_deform_attn import MSDeformAttn
from .box_ops import inverse_sigmoid


class MLP(nn.Sequential):
    """``num_layers`` linears with ReLU in between."""

    def __init__(self, in_dims: int, hidden_dims: int, out_dims: int,
                 num_layers: int):
        dims = [in_dims] + [hidden_dims] * (num_layers - 1) + [out_dims]
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < num_layers - 1:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def box_sine_embedding(boxes: Tensor, num_feats: int = 128,
                       temperature: float = 10000.0) -> Tensor:
    """Sine/cosine embedding of normalised ``(cx, cy, w, h)`` boxes.

    Args:
        boxes (Tensor): ``(B, Q, 4)`` in ``[0, 1]``.
        num_feats (int): Channels per coordinate. Defaults to 128.

    Returns:
        Tensor: ``(B, Q, 4 * num_feats)``.
    """
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=boxes.device)
    dim_t = temperature**(2 * torch.div(dim_t, 2, rounding_mode='floor') /
                          num_feats)
    pos = boxes.float()[..., None] * (2 * math.pi) / dim_t
    pos = torch.stack([pos[..., 0::2].sin(), pos[..., 1::2].cos()], -1)
    return pos.flatten(2).to(boxes.dtype)


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention, deformable cross-attention,
    FFN.

    Args:
        embed_dims (int): Query channels.
        num_heads (int): Self-attention heads.
        ffn_dims (int): FFN hidden channels.
        num_levels (int): Feature levels of the cross-attention.
        num_points (int): Sampling points per head and level.
        cross_heads (int): Heads of the deformable attention.
        dropout (float): Dropout. Defaults to 0.
    """

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int,
                 num_levels: int, num_points: int, cross_heads: int,
                 dropout: float = 0.0):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.cross_attn = MSDeformAttn(embed_dims, num_levels, cross_heads,
                                       num_points)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, ffn_dims), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(ffn_dims, embed_dims))
        self.norm3 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, query_pos: Tensor, reference: Tensor,
                memory: Tensor, spatial_shapes: Sequence[Tuple[int, int]],
                attn_mask: Optional[Tensor] = None) -> Tensor:
        """Update ``(B, Q, C)`` queries around ``(B, Q, 4)`` reference boxes.
        """
        q = k = query + query_pos
        attended = self.self_attn(q, k, query, attn_mask=attn_mask,
                                  need_weights=False)[0]
        query = self.norm1(query + self.dropout(attended))
        levels = len(spatial_shapes)
        attended = self.cross_attn(query + query_pos,
                                   reference[:, :, None].expand(
                                       -1, -1, levels, -1),
                                   memory, spatial_shapes)
        query = self.norm2(query + self.dropout(attended))
        return self.norm3(query + self.dropout(self.ffn(query)))


class DETRDecoder(nn.Module):
    """Stack of :class:`DecoderLayer` with iterative box refinement.

    Each layer predicts class logits and a box delta (in inverse-sigmoid
    space) from its output; the refined, detached box is the next layer's
    reference.

    Args:
        num_classes (int): Number of classes.
        embed_dims (int): Query channels. Defaults to 256.
        num_layers (int): Decoder layers. Defaults to 3.
        num_heads (int): Self-attention heads. Defaults to 8.
        ffn_dims (int): FFN hidden channels. Defaults to 1024.
        num_levels (int): Feature levels. Defaults to 3.
        num_points (int): Deformable sampling points. Defaults to 4.
        cross_heads (int): Deformable attention heads. Defaults to 8.
        dropout (float): Defaults to 0.
    """

    def __init__(self,
                 num_classes: int,
                 embed_dims: int = 256,
                 num_layers: int = 3,
                 num_heads: int = 8,
                 ffn_dims: int = 1024,
                 num_levels: int = 3,
                 num_points: int = 4,
                 cross_heads: int = 8,
                 dropout: float = 0.0):
        super().__init__()
        layer = DecoderLayer(embed_dims, num_heads, ffn_dims, num_levels,
                             num_points, cross_heads, dropout)
        self.layers = nn.ModuleList(
            [copy.deepcopy(layer) for _ in range(num_layers)])
        self.pos_proj = MLP(2 * embed_dims, embed_dims, embed_dims, 2)
        cls_head = nn.Linear(embed_dims, num_classes)
        box_head = MLP(embed_dims, embed_dims, 4, 3)
        self.cls_heads = nn.ModuleList(
            [copy.deepcopy(cls_head) for _ in range(num_layers)])
        self.box_heads = nn.ModuleList(
            [copy.deepcopy(box_head) for _ in range(num_layers)])
        self.embed_dims = embed_dims
        self.init_heads()

    def init_heads(self) -> None:
        """Class bias for a 1 % prior; box deltas start at zero."""
        prior = -math.log((1 - 0.01) / 0.01)
        for head in self.cls_heads:
            nn.init.constant_(head.bias, prior)
        for head in self.box_heads:
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def forward(self, query: Tensor, reference: Tensor, memory: Tensor,
                spatial_shapes: Sequence[Tuple[int, int]],
                attn_mask: Optional[Tensor] = None
                ) -> Tuple[List[Tensor], List[Tensor], Tensor]:
        """Decode.

        Args:
            query (Tensor): ``(B, Q, C)`` content queries.
            reference (Tensor): ``(B, Q, 4)`` normalised cxcywh boxes.
            memory (Tensor): ``(B, S, C)`` flattened feature levels.
            spatial_shapes (Sequence[tuple[int, int]]): ``(h, w)`` per level.
            attn_mask (Tensor, optional): ``(Q, Q)`` bool, True where
                self-attention is blocked (between query groups).

        Returns:
            tuple: class logits ``(B, Q, num_classes)`` and boxes
            ``(B, Q, 4)`` of every layer, and the last layer's queries.
        """
        all_logits, all_boxes = [], []
        for layer, cls_head, box_head in zip(self.layers, self.cls_heads,
                                             self.box_heads):
            query_pos = self.pos_proj(
                box_sine_embedding(reference, self.embed_dims // 2))
            query = layer(query, query_pos, reference, memory,
                          spatial_shapes, attn_mask)
            boxes = (box_head(query) + inverse_sigmoid(reference)).sigmoid()
            all_logits.append(cls_head(query))
            all_boxes.append(boxes)
            reference = boxes.detach()
        return all_logits, all_boxes, query
