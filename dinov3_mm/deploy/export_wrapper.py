"""The plain-tensor module that is exported: normalised NCHW batch in.

:class:`DeployWrapper` wraps a classifier, segmentor, detector or backbone so
its outputs are plain tensors (probabilities, class map and logits, top-k
detections, or embeddings) with the softmax / sigmoid / argmax / top-k baked
in.
"""
from typing import Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from .det_export import detection_outputs, is_detector
from .errors import ExportError

TASKS = ('classification', 'segmentation', 'detection', 'features')
OUTPUT_NAMES = {
    'classification': ('probs', ),
    'segmentation': ('class_map', 'logits'),
    # ``masks`` only for detectors with a mask head
    'detection': ('boxes', 'scores', 'labels', 'masks'),
    'features': ('embeddings', ),
}


def detect_task(model: nn.Module) -> str:
    """``'segmentation'`` (a ``decode_head``), ``'detection'`` (a DETR-style
    detector), ``'classification'`` (a ``head``) or ``'features'`` (a bare
    backbone or anything else)."""
    if hasattr(model, 'decode_head'):
        return 'segmentation'
    if is_detector(model):
        return 'detection'
    if hasattr(model, 'head') and hasattr(model, 'backbone'):
        return 'classification'
    return 'features'


class DeployWrapper(nn.Module):
    """Plain-tensor interface for export: normalised ``(B, 3, H, W)`` in.

    Outputs per task:

    - ``'classification'``: ``probs`` ``(B, K)``; softmax, or sigmoid when
      the head is multi-label (``head.multi_label``).
    - ``'segmentation'``: ``(class_map, logits)``, ``(B, H, W)`` int64 and
      ``(B, K, H, W)`` at input size; ``K == 1`` (binary) thresholds the
      sigmoid at ``threshold`` (default: the segmentor's).
    - ``'detection'``: ``(boxes, scores, labels[, masks])``, the top
      ``k`` (query, class) pairs (see
      :func:`~dinov3_mm.deploy.det_export.detection_outputs`).
    - ``'features'``: ``embeddings`` ``(B, C)``, the class token after the
      final norm (``forward_features()['x_norm_clstoken']``), L2-normalised
      too when ``l2_normalize``.

    Args:
        model (nn.Module): Classifier, segmentor, detector or backbone.
        task (str, optional): One of :data:`TASKS`; detected if None.
        threshold (float, optional): Binary segmentation threshold.
        l2_normalize (bool): L2-normalise the embeddings. Defaults to False.
    """

    def __init__(self, model: nn.Module, task: Optional[str] = None,
                 threshold: Optional[float] = None,
                 l2_normalize: bool = False):
        super().__init__()
        task = task or detect_task(model)
        if task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}.')
        self.model = model
        self.task = task
        self.threshold = (threshold if threshold is not None else
                          getattr(model, 'threshold', 0.5))
        self.l2_normalize = l2_normalize
        head = getattr(model, 'head', None)
        self.multi_label = bool(getattr(head, 'multi_label', False))

    @property
    def output_names(self) -> Tuple[str, ...]:
        names = OUTPUT_NAMES[self.task]
        if self.task == 'detection' and not getattr(self.model, 'with_mask',
                                                    False):
            names = names[:3]
        return names

    def forward(self, inputs: Tensor):
        if self.task == 'classification':
            logits = self.model(inputs, mode='tensor')
            return logits.sigmoid() if self.multi_label else logits.softmax(1)
        if self.task == 'segmentation':
            logits = self.model(inputs, mode='tensor')
            if logits.shape[1] == 1:
                class_map = (logits.sigmoid() > self.threshold)[:, 0].long()
            else:
                class_map = logits.argmax(1)
            return class_map, logits
        if self.task == 'detection':
            return detection_outputs(self.model, inputs)
        return self._embeddings(inputs)

    def _embeddings(self, inputs: Tensor) -> Tensor:
        backbone = getattr(self.model, 'backbone', self.model)
        if hasattr(backbone, 'forward_features'):
            emb = backbone.forward_features(inputs)['x_norm_clstoken']
        else:
            out = backbone(inputs)
            emb = out[-1] if isinstance(out, (tuple, list)) else out
            if emb.ndim != 2:
                raise ExportError(
                    f'{type(backbone).__name__} has no forward_features and '
                    f'returns {emb.ndim}-D features; expected (B, C).')
        return F.normalize(emb, dim=-1) if self.l2_normalize else emb


def as_wrapper(model: nn.Module, task: Optional[str]) -> DeployWrapper:
    """``model`` itself if it is a :class:`DeployWrapper`, else wrapped.

    Args:
        model (nn.Module): A model or a wrapper.
        task (str, optional): One of :data:`TASKS`; detected if None.

    Raises:
        ValueError: ``model`` is a wrapper of another task.
    """
    if isinstance(model, DeployWrapper):
        if task is not None and task != model.task:
            raise ValueError(f'Wrapper task {model.task!r} != {task!r}.')
        return model
    return DeployWrapper(model, task)
