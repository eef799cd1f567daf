"""Necks: feature pyramids from plain ViT maps, and the ViT-Adapter."""
from .dinov3_adapter import (ConvFFN, DINOv3Adapter, DWConv, Extractor,
                             InteractionBlock, Injector, SpatialPriorModule,
                             get_reference_points, vit_feature_indices)
from .simple_fpn import MultiLevelNeck, SimpleFPN, evenly_spaced_indices

__all__ = [
    'MultiLevelNeck', 'SimpleFPN', 'evenly_spaced_indices', 'DINOv3Adapter',
    'SpatialPriorModule', 'Extractor', 'Injector', 'InteractionBlock',
    'ConvFFN', 'DWConv', 'get_reference_points', 'vit_feature_indices'
]
