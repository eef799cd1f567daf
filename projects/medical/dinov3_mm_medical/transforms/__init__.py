"""Medical data transforms (registered in dinov3_mm's TRANSFORMS)."""
from .intensity import CTWindow, GrayToRGB, PercentileNormalize
from .loading import (LoadVolumeSlice, LoadVolumeSliceAnnotation,
                      VolumeCache, volume_key)
from .windows import (WINDOW_PRESETS, apply_window, resolve_window)

__all__ = [
    'CTWindow', 'GrayToRGB', 'PercentileNormalize', 'LoadVolumeSlice',
    'LoadVolumeSliceAnnotation', 'VolumeCache', 'volume_key',
    'WINDOW_PRESETS', 'apply_window', 'resolve_window'
]
