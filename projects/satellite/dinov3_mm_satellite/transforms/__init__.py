"""Multispectral GeoTIFF transforms (registered in dinov3_mm's TRANSFORMS)."""
from .augment import RandomFlipRot90, SpectralJitter
from .bands import NormalizeBands, SelectBands
from .formatting import PackMultispectralSegInputs
from .loading import LoadGeoTIFFAnnotation, LoadMultispectralGeoTIFF

__all__ = [
    'LoadMultispectralGeoTIFF', 'LoadGeoTIFFAnnotation', 'SelectBands',
    'NormalizeBands', 'RandomFlipRot90', 'SpectralJitter',
    'PackMultispectralSegInputs'
]
