"""Evaluation: metrics registered in ``METRICS`` (scope ``dinov3_mm``)."""
from .metrics import *  # noqa: F401,F403
from .knn import extract_cls_features, knn_accuracy, knn_classify  # noqa: F401
