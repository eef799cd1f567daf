"""A linear classification head registered from outside dinov3_mm."""
from typing import Sequence, Union

import torch
from torch import nn

from dinov3_mm.registry import MODELS


@MODELS.register_module()
class ExampleLinearHead(nn.Module):
    """Global-average-pool the last feature map, then a linear layer.

    Args:
        in_channels (int): Channels of the input features.
        num_classes (int): Number of output classes.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if in_channels <= 0 or num_classes <= 0:
            raise ValueError('in_channels and num_classes must be positive, '
                             f'got {in_channels} and {num_classes}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(
        self, feats: Union[torch.Tensor, Sequence[torch.Tensor]]
    ) -> torch.Tensor:
        """Class logits.

        Args:
            feats (Tensor | Sequence[Tensor]): ``(N, C)`` or ``(N, C, H, W)``
                features, or a backbone's tuple of them (the last is used).

        Returns:
            Tensor: ``(N, num_classes)`` logits.
        """
        if isinstance(feats, (tuple, list)):
            feats = feats[-1]
        if feats.dim() == 4:
            feats = feats.mean(dim=(2, 3))
        return self.fc(feats)
