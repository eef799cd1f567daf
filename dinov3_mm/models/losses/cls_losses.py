"""Classification losses: softmax cross-entropy (hard or soft targets) and BCE."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinov3_mm.registry import MODELS


def soft_cross_entropy(logits: Tensor,
                       target: Tensor,
                       class_weight: Optional[Tensor] = None,
                       label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy against class probabilities (mixup/cutmix targets).

    Label smoothing mixes the target with the uniform distribution first:
    ``t * (1 - eps) + eps / C``, as ``F.cross_entropy`` does.

    Args:
        logits (Tensor): ``(N, C)``.
        target (Tensor): ``(N, C)`` probabilities (rows sum to 1).
        class_weight (Tensor, optional): ``(C,)`` per-class weights.
        label_smoothing (float): Smoothing ``eps``. Defaults to 0.

    Returns:
        Tensor: Scalar, averaged over the ``N`` samples.
    """
    return F.cross_entropy(logits, target.to(logits.dtype), weight=class_weight,
                           label_smoothing=label_smoothing)


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Cross-entropy for single-label (softmax) or multi-label (sigmoid) data.

    Softmax mode takes hard labels ``(N,)`` or soft targets ``(N, C)``; with
    hard labels and ``class_weight`` the mean is weighted (divided by the sum
    of the targets' weights, as ``torch.nn.CrossEntropyLoss``); with soft
    targets it is divided by ``N``. Sigmoid mode
    (``use_sigmoid=True``) is ``BCEWithLogits`` on multi-hot or soft targets
    ``(N, C)``, averaged over all elements; ``pos_weight`` scales the positive
    term per class and ``class_weight`` scales every term of a class.

    Args:
        use_sigmoid (bool): Binary cross-entropy per class. Defaults to False.
        label_smoothing (float): Softmax: ``F.cross_entropy`` smoothing.
            Sigmoid: targets become ``t * (1 - eps) + eps / 2``. Defaults to 0.
        class_weight (Sequence[float], optional): Per-class weights.
        pos_weight (Sequence[float], optional): Sigmoid only, per-class weight
            of positives (e.g. ``num_neg / num_pos``).
        loss_weight (float): Multiplies the loss. Defaults to 1.
    """

    def __init__(self,
                 use_sigmoid: bool = False,
                 label_smoothing: float = 0.0,
                 class_weight: Optional[Sequence[float]] = None,
                 pos_weight: Optional[Sequence[float]] = None,
                 loss_weight: float = 1.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f'label_smoothing must be in [0, 1), got '
                             f'{label_smoothing}.')
        if pos_weight is not None and not use_sigmoid:
            raise ValueError('pos_weight is only used with use_sigmoid=True '
                             '(multi-label); use class_weight for softmax.')
        self.use_sigmoid = use_sigmoid
        self.label_smoothing = label_smoothing
        self.loss_weight = loss_weight
        self.register_buffer('class_weight', _as_tensor(class_weight),
                             persistent=False)
        self.register_buffer('pos_weight', _as_tensor(pos_weight),
                             persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of ``logits`` ``(N, C)`` against labels ``(N,)`` or ``(N, C)``."""
        self._check(logits)
        if self.use_sigmoid:
            return self.loss_weight * self._bce(logits, target)
        if target.ndim == 2:
            loss = soft_cross_entropy(logits, target, self.class_weight,
                                      self.label_smoothing)
        else:
            loss = F.cross_entropy(logits, target.long(),
                                   weight=self.class_weight,
                                   label_smoothing=self.label_smoothing)
        return self.loss_weight * loss

    def _bce(self, logits: Tensor, target: Tensor) -> Tensor:
        if target.shape != logits.shape:
            raise ValueError(f'Sigmoid cross-entropy needs (N, C) targets like '
                             f'the logits {tuple(logits.shape)}, got '
                             f'{tuple(target.shape)}.')
        target = target.to(logits.dtype)
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / 2
        return F.binary_cross_entropy_with_logits(
            logits, target, weight=self.class_weight,
            pos_weight=self.pos_weight)

    def _check(self, logits: Tensor) -> None:
        for name in ('class_weight', 'pos_weight'):
            value = getattr(self, name)
            if value is not None and value.numel() != logits.shape[-1]:
                raise ValueError(f'{name} has {value.numel()} entries but the '
                                 f'head predicts {logits.shape[-1]} classes.')


def _as_tensor(values: Optional[Sequence[float]]) -> Optional[Tensor]:
    if values is None:
        return None
    return torch.as_tensor(list(values), dtype=torch.float32)
