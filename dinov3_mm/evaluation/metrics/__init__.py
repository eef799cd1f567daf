"""Evaluation metrics."""
from .classification import (ClsMetric, auroc, average_precision, binary_auroc,
                             confusion_matrix, format_table, pr_curve,
                             precision_recall_f1, roc_curve, topk_accuracy)
from .segmentation import SegMetric, intersect_and_union

__all__ = [
    'ClsMetric', 'auroc', 'average_precision', 'binary_auroc',
    'confusion_matrix', 'format_table', 'pr_curve', 'precision_recall_f1',
    'roc_curve', 'topk_accuracy', 'SegMetric', 'intersect_and_union'
]
