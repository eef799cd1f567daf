"""Detectors: DETR-style detection and instance segmentation."""
from .dinov3_detr import DINOv3DETR
from .matcher import HungarianMatcher

__all__ = ['DINOv3DETR', 'HungarianMatcher']
