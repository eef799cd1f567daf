"""Per-channel residual scaling (LayerScale)."""
import torch
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Multiply tokens by a learned per-channel ``gamma``.

    Args:
        dim (int): Token width.
        init_values (float): Initial value of ``gamma``. Defaults to 1e-5.
    """

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.full((dim, ), float(init_values)))

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init_values)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma
