"""Data preprocessors: batch to device, normalise, pad, batch augments.

One module per task: :mod:`.classification` (with mixup / cutmix),
:mod:`.segmentation`, :mod:`.detection` and :mod:`.ssl` (multi-crop views).
"""
from .classification import (ClsDataPreprocessor, CutMix, Mixup,
                             RandomBatchAugment)
from .detection import DetDataPreprocessor
from .segmentation import SegDataPreprocessor
from .ssl import SSLDataPreprocessor

__all__ = [
    'ClsDataPreprocessor', 'CutMix', 'Mixup', 'RandomBatchAugment',
    'SegDataPreprocessor', 'SSLDataPreprocessor', 'DetDataPreprocessor'
]
