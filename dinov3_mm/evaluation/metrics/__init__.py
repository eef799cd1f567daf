"""Evaluation metrics (mmengine ``BaseMetric`` classes in ``METRICS``)."""
from .classification import ClsMetric
from .coco_metric import CocoMetric
from .segmentation import SegMetric
from .table import format_table

__all__ = ['ClsMetric', 'CocoMetric', 'SegMetric', 'format_table']
