"""Data samples."""
from .data_sample import DataSample, format_label

__all__ = ['DataSample', 'format_label']
