"""Knowledge distillation of a frozen teacher backbone into a student."""
from .distiller import DENSE_LOSSES, GLOBAL_LOSSES, DINOv3Distiller
from .features import FeatureSpec, describe_backbone, extract_features
from .losses import cosine_loss, relational_loss, resize_grid, smooth_l1_loss

__all__ = ['DINOv3Distiller', 'GLOBAL_LOSSES', 'DENSE_LOSSES', 'FeatureSpec',
           'describe_backbone', 'extract_features', 'cosine_loss',
           'relational_loss', 'resize_grid', 'smooth_l1_loss']
