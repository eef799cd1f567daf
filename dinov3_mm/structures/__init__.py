"""Data samples."""
from .data_sample import DataSample, format_label
from .det_data_sample import ORI_GT_KEYS, DetDataSample

__all__ = ['DataSample', 'format_label', 'DetDataSample', 'ORI_GT_KEYS']
