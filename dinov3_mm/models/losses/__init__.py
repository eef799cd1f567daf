"""Losses."""
from .cls_losses import CrossEntropyLoss, soft_cross_entropy
from .ssl_losses import DINOClsTokenLoss, GramLoss, IBOTPatchLoss, KoLeoLoss
from .seg_losses import (CEDiceLoss, DiceLoss, FocalLoss, SegCrossEntropyLoss,
                         focal_loss)

__all__ = [
    'CrossEntropyLoss', 'soft_cross_entropy', 'CEDiceLoss', 'DiceLoss',
    'FocalLoss', 'SegCrossEntropyLoss', 'DINOClsTokenLoss', 'GramLoss', 'IBOTPatchLoss',
    'KoLeoLoss', 'focal_loss'
]
