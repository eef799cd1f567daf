"""Registers every component of the medical plugin.

This is the module named by the ``dinov3_mm.plugins`` entry point; dinov3_mm
imports it before building anything, so configs use ``VolumeSliceDataset``,
``LoadVolumeSlice``, ``LoadVolumeSliceAnnotation``, ``CTWindow``,
``PercentileNormalize``, ``GrayToRGB`` and ``VolumeSliceVisHook`` by name
without ``custom_imports``. Import it yourself (``import
dinov3_mm_medical.components``) when the plugin is not pip-installed.
"""
from .datasets import VolumeSliceDataset
from .transforms import (CTWindow, GrayToRGB, LoadVolumeSlice,
                         LoadVolumeSliceAnnotation, PercentileNormalize)
from .vis_hook import VolumeSliceVisHook

__all__ = [
    'VolumeSliceDataset', 'CTWindow', 'GrayToRGB', 'LoadVolumeSlice',
    'LoadVolumeSliceAnnotation', 'PercentileNormalize', 'VolumeSliceVisHook'
]
