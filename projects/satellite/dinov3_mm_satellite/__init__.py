"""dinov3_mm satellite plugin.

Importing this package (dinov3_mm does so through the ``dinov3_mm.plugins``
entry point) registers:

* transforms: ``LoadMultispectralGeoTIFF``, ``LoadGeoTIFFAnnotation``,
  ``SelectBands``, ``NormalizeBands``, ``RandomFlipRot90``,
  ``SpectralJitter``, ``PackMultispectralSegInputs``;
* dataset: ``GeoTIFFSegDataset``;
* backbones: ``MultispectralDINOv3ViT``, ``MultispectralDINOv3ConvNeXt``;
* hook: ``ResolutionScheduleHook``.

Library functions: GeoTIFF I/O (:mod:`.geotiff`, :mod:`.georef`), band
statistics (:mod:`.bands`), patch-embedding adaptation
(:mod:`.patch_embed`), tiled scene inference (:mod:`.tiled_inference`) and
the synthetic data generator (:mod:`.synthetic`).
"""
from .backbones import MultispectralDINOv3ConvNeXt, MultispectralDINOv3ViT
from .bands import band_statistics, compute_band_statistics
from .dataset import GeoTIFFSegDataset
from .georef import GeoReference, GeoReferenceError
from .geotiff import (GeoTIFFError, RasterReader, read_geotiff, read_info,
                      read_mask, write_geotiff, write_mask_geotiff)
from .hooks import ResolutionScheduleHook
from .patch_embed import adapt_patch_embed_weight, adapt_state_dict
from .tiled_inference import TiledSegmenter, infer_scene
from .transforms import (LoadGeoTIFFAnnotation, LoadMultispectralGeoTIFF,
                         NormalizeBands, PackMultispectralSegInputs,
                         RandomFlipRot90, SelectBands, SpectralJitter)

__version__ = '0.1.0'
__all__ = [
    'GeoReference', 'GeoReferenceError', 'GeoTIFFError', 'RasterReader',
    'read_geotiff', 'read_info', 'read_mask', 'write_geotiff',
    'write_mask_geotiff', 'band_statistics', 'compute_band_statistics',
    'LoadMultispectralGeoTIFF', 'LoadGeoTIFFAnnotation', 'SelectBands',
    'NormalizeBands', 'RandomFlipRot90', 'SpectralJitter',
    'PackMultispectralSegInputs', 'GeoTIFFSegDataset',
    'MultispectralDINOv3ViT', 'MultispectralDINOv3ConvNeXt',
    'adapt_patch_embed_weight', 'adapt_state_dict',
    'ResolutionScheduleHook', 'TiledSegmenter', 'infer_scene'
]
