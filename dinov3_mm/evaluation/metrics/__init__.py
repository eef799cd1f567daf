"""Evaluation metrics (mmengine ``BaseMetric`` classes in ``METRICS``)."""
from .classification import ClsMetric
from .segmentation import SegMetric
from .table import format_table

__all__ = ['ClsMetric', 'SegMetric', 'format_table']
