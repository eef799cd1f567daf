"""Medical datasets (registered in dinov3_mm's DATASETS)."""
from .pairing import LAYOUT, VolumePair, pair_volumes
from .volume_slice import VolumeSliceDataset

__all__ = [
    'LAYOUT', 'VolumePair', 'pair_volumes', 'VolumeSliceDataset'
]
