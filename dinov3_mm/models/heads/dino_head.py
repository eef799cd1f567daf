"""DINO / iBOT projection head for self-supervised DINOv3 training.

The head maps backbone tokens (CLS tokens for DINO, masked patch tokens for
iBOT) to logits over ``out_dim`` prototypes: an MLP down to a small
bottleneck, L2 normalisation, then a bias-free prototype layer
(``last_layer``) whose rows are the prototypes.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinov3_mm.registry import MODELS


class NormalizedPrototypes(nn.Module):
    """Bias-free linear layer whose rows are scaled to unit L2 norm.

    This is weight normalisation (``w = g * v / ||v||``, one magnitude ``g``
    per output row) with the magnitude fixed to 1, as DINO's
    ``norm_last_layer=True``. Only the direction ``v`` is stored, as
    ``weight``, so the state-dict key is ``last_layer.weight`` like a plain
    ``nn.Linear``. With L2-normalised inputs the outputs are cosine
    similarities in ``[-1, 1]``.

    Args:
        in_features (int): Input width (the bottleneck).
        out_features (int): Number of prototypes.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def normalized_weight(self) -> Tensor:
        """The effective weight ``(out_features, in_features)``, unit rows."""
        eps = 1e-6 if self.weight.dtype == torch.float16 else 1e-12
        return F.normalize(self.weight, p=2, dim=1, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        """``x @ normalized_weight().T``: ``(..., in) -> (..., out)``."""
        return F.linear(x, self.normalized_weight())

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, '
                f'out_features={self.out_features}, magnitude=1')


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}.')


@MODELS.register_module()
class DINOHead(nn.Module):
    """DINO / iBOT projection head: MLP, bottleneck, L2 norm, prototypes.

    ``nlayers`` linear layers: ``in_dim -> hidden_dim`` (GELU), ``nlayers -
    2`` times ``hidden_dim -> hidden_dim`` (GELU), ``hidden_dim ->
    bottleneck_dim``; with ``nlayers=1`` a single ``in_dim ->
    bottleneck_dim`` layer. The bottleneck output is L2-normalised and fed
    to ``last_layer``, a bias-free prototype layer ``bottleneck_dim ->
    out_dim``.

    By default (``norm_last_layer=True``) ``last_layer`` is weight-normalised
    with every prototype's magnitude fixed to 1
    (:class:`NormalizedPrototypes`), as DINO's ``norm_last_layer``; logits
    are then cosine similarities in ``[-1, 1]``. The official DINOv3 head
    (``dinov3/layers/dino_head.py``) uses a plain ``nn.Linear`` instead;
    ``norm_last_layer=False`` gives that. Both store the prototypes as
    ``last_layer.weight`` ``(out_dim, bottleneck_dim)``.

    Linear weights are drawn from a truncated normal (std 0.02), biases are
    zero, at construction. :meth:`reset_parameters` redraws them. There is
    deliberately no ``init_weights``: mmengine's runner calls
    ``init_weights`` on every sub-module that has one, which would redraw a
    teacher head copied from its student.

    Note:
        The official default of 65536 prototypes suits web-scale data. For
        continued pretraining on a small dataset (thousands to a few hundred
        thousand images) far fewer prototypes, e.g. 1024-4096, are usually
        enough and make the head and the losses much cheaper.

    Args:
        in_dim (int): Width of the input tokens (backbone embed dim).
        out_dim (int): Number of prototypes ``K``. Defaults to 65536.
        hidden_dim (int): Width of the hidden MLP layers. Defaults to 2048.
        bottleneck_dim (int): Width of the normalised bottleneck. Defaults
            to 256.
        nlayers (int): Number of MLP linear layers, >= 1. Defaults to 3.
        mlp_bias (bool): Biases in the MLP layers. Defaults to True.
        norm_last_layer (bool): Unit-magnitude weight-normalised prototypes
            (True) or a plain bias-free linear layer as the official DINOv3
            head (False). Defaults to True.

    Example:
        >>> head = DINOHead(in_dim=384, out_dim=4096)
        >>> head(torch.randn(8, 384)).shape
        torch.Size([8, 4096])
    """

    def __init__(self,
                 in_dim: int,
                 out_dim: int = 65536,
                 hidden_dim: int = 2048,
                 bottleneck_dim: int = 256,
                 nlayers: int = 3,
                 mlp_bias: bool = True,
                 norm_last_layer: bool = True):
        super().__init__()
        for name, value in (('in_dim', in_dim), ('out_dim', out_dim),
                            ('hidden_dim', hidden_dim),
                            ('bottleneck_dim', bottleneck_dim),
                            ('nlayers', nlayers)):
            _check_positive_int(name, value)
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.hidden_dim = hidden_dim
        self.bottleneck_dim = bottleneck_dim
        self.nlayers = nlayers
        self.norm_last_layer = norm_last_layer

        if nlayers == 1:
            self.mlp = nn.Linear(in_dim, bottleneck_dim, bias=mlp_bias)
        else:
            layers = [nn.Linear(in_dim, hidden_dim, bias=mlp_bias), nn.GELU()]
            for _ in range(nlayers - 2):
                layers += [
                    nn.Linear(hidden_dim, hidden_dim, bias=mlp_bias),
                    nn.GELU()
                ]
            layers.append(nn.Linear(hidden_dim, bottleneck_dim, bias=mlp_bias))
            self.mlp = nn.Sequential(*layers)

        if norm_last_layer:
            self.last_layer = NormalizedPrototypes(bottleneck_dim, out_dim)
        else:
            self.last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Redraw every weight (trunc normal, std 0.02) and zero the biases."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, NormalizedPrototypes)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if getattr(module, 'bias', None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self,
                x: Tensor,
                no_last_layer: bool = False,
                only_last_layer: bool = False) -> Tensor:
        """Project tokens to prototype logits.

        Args:
            x (Tensor): ``(..., in_dim)``, or ``(..., bottleneck_dim)``
                when ``only_last_layer``.
            no_last_layer (bool): Stop after the L2-normalised bottleneck.
                Defaults to False.
            only_last_layer (bool): Apply only ``last_layer`` to ``x`` (which
                should already be a normalised bottleneck). Defaults to False.

        Returns:
            Tensor: ``(..., out_dim)`` logits; ``(..., bottleneck_dim)`` with
            ``no_last_layer``; ``x`` unchanged when both flags are set.
        """
        if not only_last_layer:
            x = self.mlp(x)
            eps = 1e-6 if x.dtype == torch.float16 else 1e-12
            x = F.normalize(x, p=2, dim=-1, eps=eps)
        if not no_last_layer:
            x = self.last_layer(x)
        return x
