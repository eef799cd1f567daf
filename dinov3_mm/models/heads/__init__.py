"""Heads."""
from .cls_heads import (ClsHead, Features, LinearClsHead, MLPClsHead,
                        MultiLabelLinearClsHead)
from .dino_head import DINOHead, NormalizedPrototypes
from .seg_heads import BaseSegHead, DPTHead, LinearSegHead, UNetHead

__all__ = [
    'ClsHead', 'Features', 'LinearClsHead', 'MLPClsHead',
    'MultiLabelLinearClsHead', 'BaseSegHead', 'DPTHead', 'LinearSegHead',
    'UNetHead', 'DINOHead', 'NormalizedPrototypes'
]
