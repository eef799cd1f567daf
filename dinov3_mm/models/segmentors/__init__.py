"""Segmentation models."""
from .dinov3_segmentor import DINOv3Segmentor

__all__ = ['DINOv3Segmentor']
