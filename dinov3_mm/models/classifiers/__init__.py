"""Top-level classification models."""
from .dinov3_classifier import DINOv3Classifier

__all__ = ['DINOv3Classifier']
