"""Data transforms: loading, resizing, albumentations, multi-crop, packing."""
from .albu import ALBU_PRESETS, Albumentations, build_albu
from .cache import CachedTransforms, flatten_cached
from .corrupt import CORRUPTIONS, Corrupt, corrupt
from .det_formatting import DET_META_KEYS, PackDetInputs
from .det_transforms import (DEFAULT_PHOTOMETRIC, DetLetterbox,
                             DetPhotometric, DetRandomCrop, DetRandomFlip,
                             DetResize, LoadDetAnnotations,
                             decode_segmentation, mask_to_rle,
                             masks_to_boxes, resize_masks,
                             segmentation_to_rle)
from .formatting import (PackClsInputs, PackMultiCropInputs, PackSegInputs,
                         image_to_tensor)
from .loading import LoadImage, read_image, to_uint8
from .gamma import GammaCorrection, adjust_gamma
from .resize import ResizeKeepRatioPad
from .multicrop import DINOMultiCrop, random_resized_crop_box
from .seg_crop import RandomCropCatRatio, RandomRescale
from .seg_loading import (LoadSegAnnotation, UnknownColourError,
                          check_mask_values, read_seg_map,
                          reduce_zero_label_map, rgb_to_index, store_seg_map)

__all__ = [
    'ALBU_PRESETS', 'Albumentations', 'build_albu', 'CachedTransforms',
    'flatten_cached', 'Corrupt', 'CORRUPTIONS', 'corrupt', 'LoadImage',
    'PackClsInputs', 'ResizeKeepRatioPad', 'image_to_tensor', 'read_image',
    'to_uint8', 'GammaCorrection', 'adjust_gamma', 'PackSegInputs',
    'LoadSegAnnotation', 'rgb_to_index', 'RandomCropCatRatio', 'RandomRescale',
    'UnknownColourError', 'read_seg_map', 'reduce_zero_label_map',
    'DINOMultiCrop', 'PackMultiCropInputs', 'random_resized_crop_box',
    'check_mask_values', 'store_seg_map', 'DET_META_KEYS', 'PackDetInputs',
    'DEFAULT_PHOTOMETRIC', 'DetLetterbox', 'DetPhotometric', 'DetRandomCrop',
    'DetRandomFlip', 'DetResize', 'LoadDetAnnotations', 'decode_segmentation',
    'mask_to_rle', 'masks_to_boxes', 'resize_masks', 'segmentation_to_rle'
]
