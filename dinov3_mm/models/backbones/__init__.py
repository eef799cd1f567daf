"""DINOv3 backbones and their weight formats."""
from .dinov3_convnext import DINOv3ConvNeXt
from .dinov3_vit import DINOv3ViT

__all__ = ['DINOv3ConvNeXt', 'DINOv3ViT']
