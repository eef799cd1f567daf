"""Evaluation: metrics registered in ``METRICS`` (scope ``dinov3_mm``).

- :mod:`.metrics`: the metric classes (:class:`ClsMetric`,
  :class:`SegMetric`, :class:`CocoMetric`).
- :mod:`.functional`: the metric functions they use, for plugins and
  scripts (accuracy, precision / recall / F1, AUROC, AP, curves, IoU
  counts, k-NN, OOD scores and metrics).
- :mod:`.knn`: :func:`extract_cls_features` for k-NN evaluation.
"""
from .functional import (OOD_SCORES, auroc, average_precision,
                         binary_auroc, confusion_matrix, fit_mahalanobis,
                         fpr_at_tpr, intersect_and_union, knn_accuracy,
                         knn_classify, knn_score, logit_score,
                         mahalanobis_score, ood_metrics, pr_curve,
                         precision_recall_f1, roc_curve, threshold_at_tpr,
                         topk_accuracy)
from .knn import extract_cls_features
from .metrics import ClsMetric, CocoMetric, SegMetric, format_table

__all__ = [
    'ClsMetric', 'CocoMetric', 'SegMetric', 'format_table', 'auroc',
    'average_precision',
    'binary_auroc', 'confusion_matrix', 'intersect_and_union',
    'knn_accuracy', 'knn_classify', 'pr_curve', 'precision_recall_f1',
    'roc_curve', 'topk_accuracy', 'extract_cls_features', 'OOD_SCORES',
    'fit_mahalanobis', 'fpr_at_tpr', 'knn_score', 'logit_score',
    'mahalanobis_score', 'ood_metrics', 'threshold_at_tpr'
]
