"""Semantic segmentation losses: cross-entropy, Dice, focal and CE + Dice.

Every loss is called as ``loss(logits, target)`` with logits
``(B, C, h, w)`` and a long target ``(B, H, W)`` of class indices where
``ignore_index`` marks unlabelled pixels; logits are resized (bilinear) to
the target size first when the sizes differ. It returns a scalar already
multiplied by ``loss_weight``.

Binary mode (``use_sigmoid=True``) takes single-channel logits
``(B, 1, h, w)`` and targets in ``{0, 1}`` (plus ``ignore_index``).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from dinov3_mm.registry import MODELS


def resize_to_target(logits: Tensor, target: Tensor,
                     align_corners: bool = False) -> Tensor:
    """Bilinearly resize ``logits`` to the target's ``(H, W)`` if needed."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:],
                               mode='bilinear', align_corners=align_corners)
    return logits


def _check(logits: Tensor, target: Tensor, use_sigmoid: bool) -> None:
    if logits.ndim != 4 or target.ndim != 3:
        raise ValueError(
            'Expected logits (B, C, h, w) and target (B, H, W), got '
            f'{tuple(logits.shape)} and {tuple(target.shape)}.')
    if use_sigmoid and logits.shape[1] != 1:
        raise ValueError('use_sigmoid=True takes (B, 1, h, w) logits, got '
                         f'{logits.shape[1]} channels.')


def _weight_tensor(weight, like: Tensor) -> Optional[Tensor]:
    if weight is None:
        return None
    return torch.as_tensor(weight, dtype=like.dtype, device=like.device)


def _prepare(logits: Tensor, target: Tensor, ignore_index: int,
             use_sigmoid: bool,
             align_corners: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    """Resize; return ``(logits, target with ignore -> 0, valid mask)``."""
    _check(logits, target, use_sigmoid)
    logits = resize_to_target(logits, target, align_corners)
    valid = target != ignore_index
    target = torch.where(valid, target, torch.zeros_like(target)).long()
    return logits, target, valid


def _mean(loss: Tensor, valid: Tensor, avg_non_ignore: bool,
          logits: Tensor) -> Tensor:
    """Mean of per-pixel ``loss`` over valid pixels (or over all pixels)."""
    loss = loss * valid
    denom = valid.sum() if avg_non_ignore else torch.tensor(valid.numel())
    if denom == 0:
        return logits.sum() * 0.0  # keeps the graph, no NaN
    return loss.sum() / denom.to(loss.dtype)


def seg_cross_entropy(logits: Tensor,
                      target: Tensor,
                      ignore_index: int = 255,
                      class_weight=None,
                      avg_non_ignore: bool = True,
                      use_sigmoid: bool = False) -> Tensor:
    """Per-pixel (binary) cross-entropy averaged over pixels.

    With ``class_weight`` each pixel's loss is multiplied by its class's
    weight and the sum is divided by the NUMBER of non-ignored pixels (as
    mmseg), not by the sum of their weights (as ``torch``).

    Args:
        logits (Tensor): ``(B, C, h, w)``, or ``(B, 1, h, w)`` for sigmoid.
        target (Tensor): ``(B, H, W)`` long.
        ignore_index (int): Unlabelled value. Defaults to 255.
        class_weight (Sequence[float], optional): ``C`` weights (2 in
            sigmoid mode: background, foreground).
        avg_non_ignore (bool): Divide by the non-ignored pixel count (True)
            or by all pixels. Defaults to True.
        use_sigmoid (bool): Binary mode. Defaults to False.

    Returns:
        Tensor: Scalar.
    """
    logits, tgt, valid = _prepare(logits, target, ignore_index, use_sigmoid)
    weight = _weight_tensor(class_weight, logits)
    if use_sigmoid:
        loss = F.binary_cross_entropy_with_logits(
            logits[:, 0], tgt.to(logits.dtype), reduction='none')
    else:
        loss = F.cross_entropy(logits, tgt, reduction='none')
    if weight is not None:
        loss = loss * weight[tgt]
    return _mean(loss, valid, avg_non_ignore, logits)


def dice_loss(logits: Tensor,
              target: Tensor,
              smooth: float = 1.0,
              exponent: int = 2,
              ignore_index: int = 255,
              use_sigmoid: bool = False,
              class_weight=None) -> Tensor:
    """Soft Dice loss, per sample and class, averaged.

    ``1 - (2 * sum(p * t) + smooth) / (sum(p**e) + sum(t**e) + smooth)``
    over the valid pixels of each sample, for each class (softmax
    probabilities and one-hot targets; in sigmoid mode the foreground only),
    then averaged (weighted by ``class_weight``) over classes and samples.

    Args:
        logits (Tensor): ``(B, C, h, w)``, or ``(B, 1, h, w)`` for sigmoid.
        target (Tensor): ``(B, H, W)`` long.
        smooth (float): Smoothing term. Defaults to 1.
        exponent (int): Exponent ``e`` of the denominator. Defaults to 2.
        ignore_index (int): Unlabelled value. Defaults to 255.
        use_sigmoid (bool): Binary mode. Defaults to False.
        class_weight (Sequence[float], optional): ``C`` weights.

    Returns:
        Tensor: Scalar.
    """
    logits, tgt, valid = _prepare(logits, target, ignore_index, use_sigmoid)
    mask = valid.unsqueeze(1).to(logits.dtype)
    if use_sigmoid:
        prob = logits.sigmoid()
        onehot = tgt.unsqueeze(1).to(logits.dtype)
    else:
        prob = logits.softmax(dim=1)
        onehot = F.one_hot(tgt, logits.shape[1]).permute(0, 3, 1, 2).to(
            logits.dtype)
    prob, onehot = prob * mask, onehot * mask
    num = 2 * (prob * onehot).sum(dim=(2, 3)) + smooth
    den = prob.pow(exponent).sum(dim=(2, 3)) + \
        onehot.pow(exponent).sum(dim=(2, 3)) + smooth
    loss = 1 - num / den  # (B, C)
    weight = _weight_tensor(class_weight, logits)
    if weight is not None:
        return (loss * weight).sum(dim=1).mean() / weight.sum()
    return loss.mean()


def focal_loss(logits: Tensor,
               target: Tensor,
               gamma: float = 2.0,
               alpha: Union[float, Sequence[float], None] = 0.25,
               ignore_index: int = 255,
               use_sigmoid: bool = False,
               avg_non_ignore: bool = True) -> Tensor:
    """Focal loss ``-alpha_t * (1 - p_t)**gamma * log(p_t)`` per pixel.

    Softmax mode: ``p_t`` is the true class's probability; ``alpha`` is a
    constant factor (float) or per-class weights (sequence), None for 1.
    Sigmoid mode: ``alpha`` weighs the foreground, ``1 - alpha`` the
    background (Lin et al.). With ``gamma=0`` and ``alpha=None`` it is the
    cross-entropy.

    Args:
        logits (Tensor): ``(B, C, h, w)``, or ``(B, 1, h, w)`` for sigmoid.
        target (Tensor): ``(B, H, W)`` long.
        gamma (float): Focusing parameter. Defaults to 2.
        alpha (float | Sequence[float], optional): Defaults to 0.25.
        ignore_index (int): Unlabelled value. Defaults to 255.
        use_sigmoid (bool): Binary mode. Defaults to False.
        avg_non_ignore (bool): Average over non-ignored pixels. Defaults to
            True.

    Returns:
        Tensor: Scalar.
    """
    logits, tgt, valid = _prepare(logits, target, ignore_index, use_sigmoid)
    if use_sigmoid:
        x = logits[:, 0]
        t = tgt.to(x.dtype)
        log_pt = -F.binary_cross_entropy_with_logits(x, t, reduction='none')
        loss = -(1 - log_pt.exp()).pow(gamma) * log_pt
        if alpha is not None:
            if not isinstance(alpha, (int, float)):
                raise ValueError('Sigmoid focal loss takes a float alpha.')
            loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    else:
        log_pt = F.log_softmax(logits, dim=1).gather(
            1, tgt.unsqueeze(1)).squeeze(1)
        loss = -(1 - log_pt.exp()).pow(gamma) * log_pt
        if isinstance(alpha, (int, float)):
            loss = loss * alpha
        elif alpha is not None:
            loss = loss * _weight_tensor(alpha, logits)[tgt]
    return _mean(loss, valid, avg_non_ignore, logits)


class _SegLoss(BaseModule):
    """Common arguments: ``ignore_index``, ``use_sigmoid``, ``loss_weight``."""

    default_name = 'loss_seg'

    def __init__(self,
                 ignore_index: int = 255,
                 use_sigmoid: bool = False,
                 loss_weight: float = 1.0,
                 loss_name: Optional[str] = None):
        super().__init__()
        self.ignore_index = ignore_index
        self.use_sigmoid = use_sigmoid
        self.loss_weight = loss_weight
        self._loss_name = loss_name or self.default_name

    @property
    def loss_name(self) -> str:
        """Key of this loss in a loss dict (mmseg convention)."""
        return self._loss_name


@MODELS.register_module()
class SegCrossEntropyLoss(_SegLoss):
    """Pixel-wise cross-entropy (see :func:`seg_cross_entropy`).

    Args:
        ignore_index (int): Defaults to 255.
        class_weight (Sequence[float], optional): Per-class weights.
        loss_weight (float): Defaults to 1.
        avg_non_ignore (bool): Defaults to True.
        use_sigmoid (bool): Binary mode. Defaults to False.
        loss_name (str, optional): Defaults to ``'loss_ce'``.
    """

    default_name = 'loss_ce'

    def __init__(self,
                 ignore_index: int = 255,
                 class_weight: Optional[Sequence[float]] = None,
                 loss_weight: float = 1.0,
                 avg_non_ignore: bool = True,
                 use_sigmoid: bool = False,
                 loss_name: Optional[str] = None):
        super().__init__(ignore_index, use_sigmoid, loss_weight, loss_name)
        self.class_weight = class_weight
        self.avg_non_ignore = avg_non_ignore

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of ``(B, C, h, w)`` logits against ``(B, H, W)``."""
        return self.loss_weight * seg_cross_entropy(
            logits, target, self.ignore_index, self.class_weight,
            self.avg_non_ignore, self.use_sigmoid)


@MODELS.register_module()
class DiceLoss(_SegLoss):
    """Soft Dice loss (see :func:`dice_loss`).

    Args:
        smooth (float): Defaults to 1.
        ignore_index (int): Defaults to 255.
        exponent (int): Defaults to 2.
        use_sigmoid (bool): Binary mode. Defaults to False.
        loss_weight (float): Defaults to 1.
        class_weight (Sequence[float], optional): Per-class weights.
        loss_name (str, optional): Defaults to ``'loss_dice'``.
    """

    default_name = 'loss_dice'

    def __init__(self,
                 smooth: float = 1.0,
                 ignore_index: int = 255,
                 exponent: int = 2,
                 use_sigmoid: bool = False,
                 loss_weight: float = 1.0,
                 class_weight: Optional[Sequence[float]] = None,
                 loss_name: Optional[str] = None):
        super().__init__(ignore_index, use_sigmoid, loss_weight, loss_name)
        self.smooth = smooth
        self.exponent = exponent
        self.class_weight = class_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of ``(B, C, h, w)`` logits against ``(B, H, W)``."""
        return self.loss_weight * dice_loss(
            logits, target, self.smooth, self.exponent, self.ignore_index,
            self.use_sigmoid, self.class_weight)


@MODELS.register_module()
class FocalLoss(_SegLoss):
    """Pixel-wise focal loss (see :func:`focal_loss`).

    Args:
        gamma (float): Defaults to 2.
        alpha (float | Sequence[float], optional): Defaults to 0.25.
        ignore_index (int): Defaults to 255.
        use_sigmoid (bool): Binary mode. Defaults to False.
        loss_weight (float): Defaults to 1.
        avg_non_ignore (bool): Defaults to True.
        loss_name (str, optional): Defaults to ``'loss_focal'``.
    """

    default_name = 'loss_focal'

    def __init__(self,
                 gamma: float = 2.0,
                 alpha: Union[float, Sequence[float], None] = 0.25,
                 ignore_index: int = 255,
                 use_sigmoid: bool = False,
                 loss_weight: float = 1.0,
                 avg_non_ignore: bool = True,
                 loss_name: Optional[str] = None):
        super().__init__(ignore_index, use_sigmoid, loss_weight, loss_name)
        self.gamma = gamma
        self.alpha = alpha
        self.avg_non_ignore = avg_non_ignore

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of ``(B, C, h, w)`` logits against ``(B, H, W)``."""
        return self.loss_weight * focal_loss(
            logits, target, self.gamma, self.alpha, self.ignore_index,
            self.use_sigmoid, self.avg_non_ignore)


@MODELS.register_module()
class CEDiceLoss(_SegLoss):
    """``ce_weight * CE + dice_weight * Dice``, times ``loss_weight``.

    Args:
        ce_weight (float): Defaults to 1.
        dice_weight (float): Defaults to 1.
        ignore_index (int): Defaults to 255.
        class_weight (Sequence[float], optional): For the cross-entropy.
        use_sigmoid (bool): Binary mode. Defaults to False.
        smooth (float): Dice smoothing. Defaults to 1.
        exponent (int): Dice exponent. Defaults to 2.
        avg_non_ignore (bool): For the cross-entropy. Defaults to True.
        loss_weight (float): Defaults to 1.
        loss_name (str, optional): Defaults to ``'loss_ce_dice'``.
    """

    default_name = 'loss_ce_dice'

    def __init__(self,
                 ce_weight: float = 1.0,
                 dice_weight: float = 1.0,
                 ignore_index: int = 255,
                 class_weight: Optional[Sequence[float]] = None,
                 use_sigmoid: bool = False,
                 smooth: float = 1.0,
                 exponent: int = 2,
                 avg_non_ignore: bool = True,
                 loss_weight: float = 1.0,
                 loss_name: Optional[str] = None):
        super().__init__(ignore_index, use_sigmoid, loss_weight, loss_name)
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.class_weight = class_weight
        self.smooth = smooth
        self.exponent = exponent
        self.avg_non_ignore = avg_non_ignore

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of ``(B, C, h, w)`` logits against ``(B, H, W)``."""
        ce = seg_cross_entropy(logits, target, self.ignore_index,
                               self.class_weight, self.avg_non_ignore,
                               self.use_sigmoid)
        dice = dice_loss(logits, target, self.smooth, self.exponent,
                         self.ignore_index, self.use_sigmoid)
        return self.loss_weight * (self.ce_weight * ce +
                                   self.dice_weight * dice)
