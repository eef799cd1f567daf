"""Feed-forward layers of the DINOv3 ViT blocks."""
import torch.nn.functional as F
from torch import Tensor, nn

from .linear import Linear, linear


class Mlp(nn.Module):
    """Two-layer GELU MLP (``fc1`` -> exact GELU -> ``fc2``).

    The GELU is fused into ``fc1`` on the CPU inference path (see
    :mod:`.linear`).

    Args:
        in_features (int): Input width.
        hidden_features (int): Hidden width.
        bias (bool): Whether the linear layers have biases. Defaults to True.
        drop (float): Dropout after each linear layer. Defaults to 0.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 bias: bool = True,
                 drop: float = 0.0):
        super().__init__()
        self.fc1 = Linear(in_features, hidden_features, bias=bias)
        self.fc2 = Linear(hidden_features, in_features, bias=bias)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(linear(x, self.fc1, gelu=True))))


def swiglu_hidden_size(hidden_features: int, align_to: int = 8) -> int:
    """Official SwiGLU width: two thirds of ``hidden_features``, rounded up.

    Args:
        hidden_features (int): ``embed_dim * ffn_ratio``.
        align_to (int): Round up to a multiple of this. Defaults to 8.
    """
    d = int(hidden_features * 2 / 3)
    return d + (-d % align_to)


class SwiGLUFFN(nn.Module):
    """SwiGLU feed-forward: ``w3(silu(w1 x) * w2 x)``.

    Args:
        in_features (int): Input width.
        hidden_features (int): Nominal hidden width (``embed_dim * ratio``);
            the real width is :func:`swiglu_hidden_size` of it.
        bias (bool): Whether the linear layers have biases. Defaults to True.
        align_to (int): Hidden-size rounding. Defaults to 8.
        drop (float): Dropout on the output. Defaults to 0.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 bias: bool = True,
                 align_to: int = 8,
                 drop: float = 0.0):
        super().__init__()
        hidden = swiglu_hidden_size(hidden_features, align_to)
        self.w1 = Linear(in_features, hidden, bias=bias)
        self.w2 = Linear(in_features, hidden, bias=bias)
        self.w3 = Linear(hidden, in_features, bias=bias)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.w3(F.silu(self.w1(x)) * self.w2(x)))


SWIGLU_ALIGN = {'swiglu': 8, 'swiglu32': 32, 'swiglu64': 64, 'swiglu128': 128}


def build_ffn(ffn_type: str,
              dim: int,
              ffn_ratio: float,
              bias: bool = True,
              drop: float = 0.0) -> nn.Module:
    """Build the FFN named like the official ``ffn_layer`` option.

    Args:
        ffn_type (str): ``'mlp'``, ``'swiglu'`` or ``'swiglu32'``/``64``/``128``
            (SwiGLU whose hidden size is rounded to that multiple).
        dim (int): Token width.
        ffn_ratio (float): Hidden width over ``dim``.
        bias (bool): Linear biases. Defaults to True.
        drop (float): Dropout. Defaults to 0.
    """
    hidden = int(dim * ffn_ratio)
    if ffn_type == 'mlp':
        return Mlp(dim, hidden, bias=bias, drop=drop)
    if ffn_type in SWIGLU_ALIGN:
        return SwiGLUFFN(
            dim, hidden, bias=bias, align_to=SWIGLU_ALIGN[ffn_type], drop=drop)
    raise ValueError(f'Unknown ffn_type {ffn_type!r}; expected one of '
                     f"{['mlp', *SWIGLU_ALIGN]}.")
