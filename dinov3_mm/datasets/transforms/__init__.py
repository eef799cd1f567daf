"""Data transforms: loading, resizing, albumentations, packing."""
from .albu import ALBU_PRESETS, Albumentations, build_albu
from .formatting import PackClsInputs, image_to_tensor
from .loading import LoadImage, read_image, to_uint8
from .gamma import GammaCorrection, adjust_gamma
from .resize import ResizeKeepRatioPad
from .seg_formatting import PackSegInputs
from .multicrop import (DINOMultiCrop, PackMultiCropInputs,
                        random_resized_crop_box)
from .seg_crop import RandomCropCatRatio, RandomRescale
from .seg_loading import (LoadSegAnnotation, UnknownColourError, read_seg_map,
                          reduce_zero_label_map, rgb_to_index)

__all__ = [
    'ALBU_PRESETS', 'Albumentations', 'build_albu', 'LoadImage',
    'PackClsInputs', 'ResizeKeepRatioPad', 'image_to_tensor', 'read_image',
    'to_uint8', 'GammaCorrection', 'adjust_gamma', 'PackSegInputs',
    'LoadSegAnnotation', 'rgb_to_index', 'RandomCropCatRatio', 'RandomRescale',
    'UnknownColourError', 'read_seg_map', 'reduce_zero_label_map',
    'DINOMultiCrop', 'PackMultiCropInputs', 'random_resized_crop_box'
]
