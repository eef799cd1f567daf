"""Self-supervised (DINO/iBOT/Gram) pretraining components."""
from .dinov3_ssl import DINOv3SSL
from .masking import BlockMaskGenerator, sample_masks

__all__ = ['DINOv3SSL', 'BlockMaskGenerator', 'sample_masks']
