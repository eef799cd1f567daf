"""Heads."""
from .cls_heads import (ClsHead, LinearClsHead, MLPClsHead,
                        MultiLabelLinearClsHead)
from .dino_head import DINOHead, NormalizedPrototypes
from .seg_heads import BaseSegHead, DPTHead, LinearSegHead, UNetHead

__all__ = [
    'ClsHead', 'LinearClsHead', 'MLPClsHead', 'MultiLabelLinearClsHead',
    'BaseSegHead', 'DPTHead', 'LinearSegHead', 'UNetHead', 'DINOHead', 'NormalizedPrototypes'
]
