"""Evaluation metrics."""
from .classification import (ClsMetric, auroc, average_precision, binary_auroc,
                             confusion_matrix, format_table, pr_curve,
                             precision_recall_f1, roc_curve, topk_accuracy)

__all__ = [
    'ClsMetric', 'auroc', 'average_precision', 'binary_auroc',
    'confusion_matrix', 'format_table', 'pr_curve', 'precision_recall_f1',
    'roc_curve', 'topk_accuracy'
]
