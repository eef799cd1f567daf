"""Heads."""
from .cls_heads import (ClsHead, LinearClsHead, MLPClsHead,
                        MultiLabelLinearClsHead)

__all__ = ['ClsHead', 'LinearClsHead', 'MLPClsHead', 'MultiLabelLinearClsHead']
