"""Industrial inspection plugin for dinov3_mm.

Importing this package (dinov3_mm does it through the ``dinov3_mm.plugins``
entry point) registers, in the ``dinov3_mm`` registries:

* ``ClassWeightedSampler`` (DATA_SAMPLERS) - inverse-frequency or weighted
  class sampling for imbalanced defect data;
* ``ClsFocalLoss`` (MODELS) - focal loss for classification heads;
* ``OperatingPointMetric`` (METRICS) - defect precision / recall / F1 / FPR
  at a target recall or precision, AUROC, AP and threshold sweeps;
* ``DINOv3PatchCore`` (MODELS) - label-free anomaly detection from frozen
  DINOv3 patch features.
"""
from .anomaly import DINOv3PatchCore, run_anomaly_detection
from .losses import ClsFocalLoss
from .metrics import OperatingPointMetric
from .samplers import ClassWeightedSampler

__all__ = [
    'ClassWeightedSampler', 'ClsFocalLoss', 'OperatingPointMetric',
    'DINOv3PatchCore', 'run_anomaly_detection'
]
__version__ = '0.1.0'
