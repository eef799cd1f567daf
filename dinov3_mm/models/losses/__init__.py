"""Losses."""
from .cls_losses import CrossEntropyLoss, soft_cross_entropy

__all__ = ['CrossEntropyLoss', 'soft_cross_entropy']
