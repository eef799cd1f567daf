"""Datasets and data transforms.

Importing this package registers every dataset and transform; the registries
of the ``dinov3_mm`` scope import it lazily.
"""
from .annotation_file import AnnotationFileDataset
from .base import BaseClsDataset
from .coco_detection import CocoDetDataset
from .image_folder import IMG_EXTENSIONS, ImageFolderDataset
from .file_listing import check_data_root
from .seg_folder import SegFolderDataset, classes_and_palette, default_palette
from .split import DEFAULT_SPLIT_RATIOS, SPLIT_NAMES, stratified_split
from .synthetic import make_shape_images, write_shape_dataset
from .synthetic_seg import SEG_CLASSES, SEG_PALETTE, write_seg_shapes_dataset
from .transforms import (ALBU_PRESETS, Albumentations, LoadImage,
                         PackClsInputs, ResizeKeepRatioPad, read_image)
from .seg_validation import (SEG_CHECKS, SegReport, SegValidationRules,
                             validate_seg_dataset)
from .synthetic_instances import (INSTANCE_CLASSES,
                                  write_instance_shapes_dataset)
from .unlabeled import UnlabeledImageDataset
from .validation import Report, ValidationRules, validate_dataset
from .yolo_detection import YoloDetDataset
from .det_validation import (DET_CHECKS, DetReport, DetValidationRules,
                             validate_det_dataset)

__all__ = [
    'AnnotationFileDataset', 'BaseClsDataset', 'IMG_EXTENSIONS',
    'ImageFolderDataset', 'DEFAULT_SPLIT_RATIOS', 'SPLIT_NAMES',
    'stratified_split', 'make_shape_images', 'write_shape_dataset',
    'ALBU_PRESETS', 'Albumentations', 'LoadImage', 'PackClsInputs',
    'ResizeKeepRatioPad', 'read_image', 'Report', 'ValidationRules',
    'validate_dataset', 'SegFolderDataset', 'default_palette', 'SEG_CLASSES',
    'SEG_PALETTE', 'write_seg_shapes_dataset', 'SEG_CHECKS', 'SegReport',
    'SegValidationRules', 'validate_seg_dataset', 'UnlabeledImageDataset',
    'check_data_root', 'classes_and_palette', 'CocoDetDataset',
    'YoloDetDataset', 'INSTANCE_CLASSES', 'write_instance_shapes_dataset',
    'DET_CHECKS', 'DetReport', 'DetValidationRules', 'validate_det_dataset'
]
