"""Necks: feature pyramids from plain ViT maps."""
from .simple_fpn import MultiLevelNeck, SimpleFPN, evenly_spaced_indices

__all__ = ['MultiLevelNeck', 'SimpleFPN', 'evenly_spaced_indices']
