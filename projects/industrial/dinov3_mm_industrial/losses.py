"""Focal loss for image classification heads.

Hard labels reuse the core pixel-wise :func:`dinov3_mm.models.losses.
seg_losses.focal_loss` on ``(N, C, 1, 1)`` logits: one image is one pixel,
so the formula, ``alpha`` handling and averaging are the core's. Soft
targets (mixup / cutmix) use the same formula summed over the classes.
"""
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinov3_mm.models.losses import focal_loss
from dinov3_mm.registry import MODELS

# Labels are class indices >= 0, so no sample is ever ignored.
_NO_IGNORE = -1


@MODELS.register_module()
class ClsFocalLoss(nn.Module):
    """Softmax focal loss ``-alpha_t * (1 - p_t)**gamma * log(p_t)``.

    ``p_t`` is the predicted probability of the true class. ``gamma``
    down-weights easy, well-classified samples (the many good parts of an
    inspection line) so the hard and rare ones dominate; ``alpha`` weights
    the classes. With ``gamma=0`` and ``alpha=None`` it equals the
    cross-entropy. Averaged over the batch.

    Used from a classification head config::

        head=dict(type='LinearClsHead', num_classes=3, in_channels=768,
                  loss=dict(type='ClsFocalLoss', gamma=2.0,
                            alpha=[0.25, 1.0, 1.0]))

    Args:
        gamma (float): Focusing parameter, ``>= 0``. Defaults to 2.
        alpha (float | Sequence[float], optional): A constant factor, or one
            weight per class. Defaults to None (1 for every class).
        loss_weight (float): Multiplies the loss. Defaults to 1.
    """

    def __init__(self,
                 gamma: float = 2.0,
                 alpha: Union[float, Sequence[float], None] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f'gamma must be >= 0, got {gamma}.')
        if alpha is not None and not isinstance(alpha, (int, float)):
            alpha = [float(a) for a in alpha]
            if any(a < 0 for a in alpha):
                raise ValueError(f'alpha weights must be >= 0, got {alpha}.')
        self.gamma = gamma
        self.alpha = alpha
        self.loss_weight = loss_weight

    def _check(self, logits: Tensor, target: Tensor) -> None:
        if logits.ndim != 2:
            raise ValueError(f'ClsFocalLoss takes (N, C) logits, got shape '
                             f'{tuple(logits.shape)}.')
        if isinstance(self.alpha, list) and len(self.alpha) != logits.shape[1]:
            raise ValueError(f'ClsFocalLoss has {len(self.alpha)} alpha '
                             f'weights but the head predicts '
                             f'{logits.shape[1]} classes.')
        if target.ndim == 2 and target.shape != logits.shape:
            raise ValueError(f'Soft targets {tuple(target.shape)} do not '
                             f'match the logits {tuple(logits.shape)}.')
        if target.ndim == 2 and not torch.allclose(
                target.sum(dim=1), torch.ones_like(target[:, 0]), atol=1e-3):
            raise ValueError(
                'ClsFocalLoss is a softmax loss: soft targets must sum to 1 '
                'per sample (mixup/cutmix). For multi-label heads use '
                "dict(type='CrossEntropyLoss', use_sigmoid=True).")
        if target.ndim not in (1, 2) or target.shape[0] != logits.shape[0]:
            raise ValueError(f'ClsFocalLoss takes (N,) labels or (N, C) soft '
                             f'targets, got {tuple(target.shape)} for logits '
                             f'{tuple(logits.shape)}.')

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of ``(N, C)`` logits against ``(N,)`` labels or ``(N, C)``
        soft targets."""
        self._check(logits, target)
        if target.ndim == 1:
            pixels = logits[:, :, None, None]  # one image = one pixel
            labels = target.long()[:, None, None]
            loss = focal_loss(pixels, labels, gamma=self.gamma,
                              alpha=self.alpha, ignore_index=_NO_IGNORE)
        else:
            loss = self._soft(logits, target.to(logits.dtype))
        return self.loss_weight * loss

    def _soft(self, logits: Tensor, target: Tensor) -> Tensor:
        """``sum_c t_c * alpha_c * (1 - p_c)**gamma * -log(p_c)``, mean."""
        log_p = F.log_softmax(logits, dim=1)
        loss = -(1 - log_p.exp()).pow(self.gamma) * log_p * target
        if isinstance(self.alpha, list):
            loss = loss * torch.tensor(self.alpha, dtype=logits.dtype,
                                       device=logits.device)
        elif self.alpha is not None:
            loss = loss * self.alpha
        return loss.sum(dim=1).mean()
