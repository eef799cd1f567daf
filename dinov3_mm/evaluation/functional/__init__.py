"""Metric functions of arrays and tensors, without state or registries.

The metric classes of :mod:`dinov3_mm.evaluation.metrics` and the plugins
compute their values with these.
"""
from .classification import (auroc, average_precision, binary_auroc,
                             confusion_matrix, pr_curve, precision_recall_f1,
                             roc_curve, topk_accuracy)
from .detection import (build_coco_gt, coco_evaluate, encode_mask_rle,
                        evaluate_detections, predictions_to_coco)
from .knn import knn_accuracy, knn_classify
from .ood import (OOD_SCORES, fit_mahalanobis, fpr_at_tpr, knn_score,
                  logit_score, mahalanobis_score, ood_metrics,
                  threshold_at_tpr)
from .robustness import corruption_errors, summarise_sweep
from .segmentation import intersect_and_union

__all__ = [
    'auroc', 'average_precision', 'binary_auroc', 'confusion_matrix',
    'pr_curve', 'precision_recall_f1', 'roc_curve', 'topk_accuracy',
    'knn_accuracy', 'knn_classify', 'intersect_and_union', 'OOD_SCORES',
    'fit_mahalanobis', 'fpr_at_tpr', 'knn_score', 'logit_score',
    'mahalanobis_score', 'ood_metrics', 'threshold_at_tpr',
    'corruption_errors', 'summarise_sweep', 'build_coco_gt',
    'coco_evaluate', 'encode_mask_rle', 'evaluate_detections',
    'predictions_to_coco'
]
