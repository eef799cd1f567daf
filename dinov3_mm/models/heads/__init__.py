"""Heads."""
from .cls_heads import (ClsHead, LinearClsHead, MLPClsHead,
                        MultiLabelLinearClsHead)
from .seg_heads import BaseSegHead, DPTHead, LinearSegHead, UNetHead

__all__ = [
    'ClsHead', 'LinearClsHead', 'MLPClsHead', 'MultiLabelLinearClsHead',
    'BaseSegHead', 'DPTHead', 'LinearSegHead', 'UNetHead'
]
