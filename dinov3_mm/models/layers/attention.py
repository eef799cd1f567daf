"""Self-attention of the DINOv3 ViT: fused qkv, masked key bias, RoPE, SDPA."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .linear import Linear, linear



class LinearKMaskedBias(Linear):
    """qkv projection whose key third has its bias masked to zero.

    The mask is a persistent buffer (``bias_mask``) exactly as in the official
    checkpoints, so they load strictly.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        if out_features % 3 != 0:
            raise ValueError(f'qkv width must be divisible by 3, got '
                             f'{out_features}.')
        super().__init__(in_features, out_features, bias=bias)
        if bias:
            self.register_buffer('bias_mask', self._key_mask())

    def _key_mask(self) -> Tensor:
        mask = torch.ones(self.out_features)
        third = self.out_features // 3
        mask[third:2 * third] = 0
        return mask

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if getattr(self, 'bias_mask', None) is not None:
            self.bias_mask.copy_(self._key_mask())

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return linear(x, self)
        return linear(x, self, bias=self.bias * self.bias_mask.to(self.bias.dtype))


class SelfAttention(nn.Module):
    """Multi-head self-attention with axial RoPE on the patch tokens.

    RoPE leaves the prefix tokens (class and storage tokens) untouched and
    rotates queries and keys in the dtype of the RoPE tables (fp32), casting
    back afterwards, as the official implementation does.

    Args:
        dim (int): Token width.
        num_heads (int): Number of heads.
        qkv_bias (bool): Bias on the qkv projection. Defaults to True.
        proj_bias (bool): Bias on the output projection. Defaults to True.
        mask_k_bias (bool): Zero the key bias (official DINOv3). Defaults to
            False.
        attn_drop (float): Attention dropout. Defaults to 0.
        proj_drop (float): Output dropout. Defaults to 0.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 proj_bias: bool = True,
                 mask_k_bias: bool = False,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'embed dim {dim} is not divisible by '
                             f'num_heads {num_heads}.')
        self.num_heads = num_heads
        qkv_class = LinearKMaskedBias if mask_k_bias else Linear
        self.qkv = qkv_class(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = Linear(dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self,
                x: Tensor,
                rope: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads,
                                  C // self.num_heads).permute(2, 0, 3, 1, 4)
        if rope is None:
            q, k, v = qkv.unbind(0)
        elif torch.is_grad_enabled() and qkv.requires_grad:
            # split and squeeze, not indexing (qkv[:2], qkv[2]): their
            # backward concatenates, where indexing allocates and zero-fills
            # a qkv-sized gradient per slice
            qk, v = qkv.split((2, 1))
            q, k = apply_rope(qk, rope).unbind(0)
            v = v.squeeze(0)
        else:
            q, k = apply_rope(qkv[:2], rope).unbind(0)
            v = qkv[2]
        x = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


def apply_rope(qk: Tensor, rope: Tuple[Tensor, Tensor]) -> Tensor:
    """Rotate the trailing patch tokens of stacked queries and keys.

    Equivalent to casting to the tables' dtype, ``x * cos +
    rotate_half(x) * sin`` and casting back, but computed on the two halves
    of the head dimension (the tables repeat across them) and written straight
    into the output, which saves the negation and the concatenations. Under
    autograd (and ONNX tracing) the halves are concatenated instead, whose
    backward is cheaper than that of slice assignment.

    Args:
        qk (Tensor): ``[..., N, head_dim]``: stacked queries and keys
            ``[2, B, heads, N, head_dim]``, or either of them.
        rope (tuple[Tensor, Tensor]): ``(sin, cos)``, each ``[HW, head_dim]``
            with ``HW <= N``; the first ``N - HW`` tokens are prefix tokens.

    Returns:
        Tensor: Same shape and dtype as ``qk``.
    """
    sin, cos = rope
    prefix = qk.shape[-2] - sin.shape[-2]
    if prefix < 0:
        raise ValueError(f'RoPE tables cover {sin.shape[-2]} patches but only '
                         f'{qk.shape[-2]} tokens were given.')
    half = qk.shape[-1] // 2
    sin, cos = sin[:, :half], cos[:, :half]
    if torch.jit.is_tracing() or (torch.is_grad_enabled()
                                  and qk.requires_grad):
        # ONNX: concatenation instead of slice assignment (ScatterND, slow);
        # autograd: split and concatenation are each other's backward, where
        # slicing or slice assignment clones and zero-fills it per slice
        prefix_tokens, patches = qk.split(
            (prefix, qk.shape[-2] - prefix), -2)
        x1, x2 = patches.split(half, -1)
        rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), -1)
        return torch.cat((prefix_tokens, rotated.to(qk.dtype)), -2)
    x1, x2 = qk[..., prefix:, :half], qk[..., prefix:, half:]
    out = torch.empty(qk.shape, dtype=qk.dtype, device=qk.device)
    out[..., :prefix, :] = qk[..., :prefix, :]
    # type promotion computes these in the tables' dtype (fp32)
    out[..., prefix:, :half] = torch.addcmul(x1 * cos, x2, sin, value=-1)
    out[..., prefix:, half:] = torch.addcmul(x2 * cos, x1, sin)
    return out
