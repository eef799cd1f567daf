"""Draw a packed sample (``inputs`` + data sample) or a model's prediction,
choosing the picture by what the data sample holds.

========================  ==============================================
field of the data sample  picture
========================  ==============================================
``gt_sem_seg``            image and mask overlay, legend of the classes
``gt_instances``          boxes with class names (detection)
``gt_label``              image captioned with the class name(s)
``pred_sem_seg``          image, ground truth, prediction, error map
``pred_instances``        predicted boxes with names and scores
``pred_label``            image captioned with prediction, score, truth
========================  ==============================================
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .sample_drawing import (caption_image, class_name, cls_prediction_lines,
                             draw_boxes, mask_panel, to_rgb_uint8)
from .seg_overlay import compare_panel

Normalization = Tuple[np.ndarray, np.ndarray, Optional[Sequence[int]]]


def find_normalization(transforms: Sequence) -> Optional[Normalization]:
    """``(mean, std, rgb_indices)`` of the last pipeline step that
    normalises (has ``mean`` and ``std`` attributes), or None.

    Our pipelines leave normalisation to the model's data preprocessor;
    plugin steps such as ``NormalizeBands`` normalise in the pipeline.
    """
    for step in reversed(list(transforms or [])):
        mean, std = getattr(step, 'mean', None), getattr(step, 'std', None)
        if mean is not None and std is not None:
            return (np.asarray(mean, np.float64).reshape(-1),
                    np.asarray(std, np.float64).reshape(-1),
                    getattr(step, 'rgb_indices', None))
    return None


def _numpy(value) -> np.ndarray:
    data = getattr(value, 'data', value)
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    return np.asarray(data)


def inputs_to_image(inputs, normalization: Optional[Normalization] = None
                    ) -> np.ndarray:
    """The RGB uint8 ``(H, W, 3)`` picture of a packed ``(C, H, W)`` input.

    With ``normalization`` (see :func:`find_normalization`) the values are
    brought back with ``x * std + mean`` first; an image in ``[0, 1]`` after
    that is scaled to ``[0, 255]``. Of more than three channels the
    normaliser's ``rgb_indices`` (else the first three) are shown.
    """
    array = _numpy(inputs).astype(np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f'Expected (C, H, W) inputs, got shape {array.shape}.')
    rgb = None
    if normalization is not None:
        mean, std, rgb = normalization
        if mean.size in (1, array.shape[0]):
            array = (array * std.reshape(-1, 1, 1) + mean.reshape(-1, 1, 1))
    if array.shape[0] > 3:
        array = array[list(rgb) if rgb is not None else [0, 1, 2]]
    return to_rgb_uint8(np.transpose(array, (1, 2, 0)))


def _labels(sample, field: str) -> list:
    value = sample.get(field)
    return [] if value is None else [int(v) for v in _numpy(value).reshape(-1)]


def _mask_at_image(mask: np.ndarray, image: np.ndarray, meta: dict
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Image and mask of one size: a test pipeline's original-size mask
    with its resized and padded image is matched by undoing the padding
    and the resize of the image."""
    if mask.shape == image.shape[:2]:
        return image, mask
    top, _, left, _ = meta.get('pad_border', (0, 0, 0, 0))
    h, w = meta.get('img_shape', image.shape[:2])[:2]
    image = image[top:top + h, left:left + w]
    if image.shape[:2] != mask.shape:
        image = cv2.resize(image, (mask.shape[1], mask.shape[0]),
                           interpolation=cv2.INTER_LINEAR)
    return image, mask


def _mask(value) -> np.ndarray:
    mask = _numpy(value)
    return mask[0] if mask.ndim == 3 else mask


def draw_packed_sample(inputs,
                       data_sample,
                       classes: Optional[Sequence[str]] = None,
                       palette: Optional[Sequence[Sequence[int]]] = None,
                       normalization: Optional[Normalization] = None
                       ) -> np.ndarray:
    """What the model sees of one pipeline output, as an RGB picture.

    Args:
        inputs: The packed ``(C, H, W)`` image (uint8 or float).
        data_sample: Its data sample (classification, segmentation or
            detection ground truth).
        classes (sequence[str], optional): Class names of the dataset.
        palette (sequence, optional): Class colours of the dataset.
        normalization: ``(mean, std, rgb_indices)`` to undo, see
            :func:`find_normalization`.

    Raises:
        ValueError: The data sample holds none of ``gt_sem_seg``,
            ``gt_instances``, ``gt_label`` or ``gt_score``.
    """
    image = inputs_to_image(inputs, normalization)
    meta = dict(getattr(data_sample, 'metainfo', {}) or {})
    if 'gt_sem_seg' in data_sample:
        image, mask = _mask_at_image(_mask(data_sample.gt_sem_seg), image,
                                     meta)
        return mask_panel(image, mask, classes, palette, title='ground truth')
    if 'gt_instances' in data_sample:
        instances = data_sample.gt_instances
        return draw_boxes(image, _numpy(instances.bboxes),
                          _labels(instances, 'labels') or None, classes,
                          palette)
    if 'gt_label' in data_sample or 'gt_score' in data_sample:
        names = [class_name(i, classes) for i in _labels(data_sample,
                                                         'gt_label')]
        lines = [f'label: {", ".join(names)}'] if names else []
        if 'gt_score' in data_sample:
            score = _numpy(data_sample.gt_score).reshape(-1)
            top = np.argsort(-score)[:3]
            lines.append('score: ' + ', '.join(
                f'{class_name(i, classes)} {score[i]:.2f}' for i in top
                if score[i] > 0))
        return caption_image(image, lines)
    fields = sorted(getattr(data_sample, 'keys', lambda: [])())
    raise ValueError(
        f'Cannot draw a sample whose data sample holds {fields}: expected '
        'gt_sem_seg (segmentation), gt_instances (detection) or gt_label '
        '(classification).')


def draw_prediction(image: np.ndarray,
                    data_sample,
                    classes: Optional[Sequence[str]] = None,
                    palette: Optional[Sequence[Sequence[int]]] = None
                    ) -> np.ndarray:
    """A model's prediction drawn on its (original-size) image.

    Segmentation: image | ground truth | prediction | errors (see
    :func:`~dinov3_mm.visualization.seg_overlay.compare_panel`; without
    ground truth image | prediction). Classification: the image captioned
    with the predicted class and score (green when right, red when wrong)
    and the true class. Detection: predicted boxes.

    Raises:
        ValueError: The data sample has none of ``pred_sem_seg``,
            ``pred_instances`` or ``pred_label``.
    """
    image = to_rgb_uint8(image)
    if 'pred_sem_seg' in data_sample:
        pred = _mask(data_sample.pred_sem_seg)
        gt = (_mask(data_sample.gt_sem_seg)
              if 'gt_sem_seg' in data_sample else None)
        hw = pred.shape
        if image.shape[:2] != hw:
            image = cv2.resize(image, (hw[1], hw[0]),
                               interpolation=cv2.INTER_LINEAR)
        if gt is not None and gt.shape != hw:
            gt = cv2.resize(gt.astype(np.float32), (hw[1], hw[0]),
                            interpolation=cv2.INTER_NEAREST)
        return compare_panel(image, None if gt is None else gt.astype(
            np.int64), pred.astype(np.int64), palette, classes)
    if 'pred_instances' in data_sample:
        instances = data_sample.pred_instances
        scores = (_numpy(instances.scores).reshape(-1)
                  if 'scores' in instances else None)
        return draw_boxes(image, _numpy(instances.bboxes),
                          _labels(instances, 'labels') or None, classes,
                          palette, scores)
    if 'pred_label' in data_sample:
        labels = _labels(data_sample, 'pred_label')
        scores = (_numpy(data_sample.pred_score).reshape(-1)
                  if 'pred_score' in data_sample else None)
        label_scores = [float(scores[i]) if scores is not None
                        and i < len(scores) else float('nan')
                        for i in labels]
        gt = (_labels(data_sample, 'gt_label')
              if 'gt_label' in data_sample else None)
        return caption_image(image, cls_prediction_lines(
            labels, label_scores, gt, classes))
    fields = sorted(getattr(data_sample, 'keys', lambda: [])())
    raise ValueError(
        f'Cannot draw a prediction whose data sample holds {fields}: '
        'expected pred_sem_seg, pred_instances or pred_label.')
