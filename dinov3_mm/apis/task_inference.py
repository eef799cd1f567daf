"""One inference entry for every task: the model decides which one runs."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

from torch import nn

from dinov3_mm.apis.det_inference import inference_detector, is_detector
from dinov3_mm.apis.inference import ImageInput, inference_classifier
from dinov3_mm.apis.seg_inference import inference_segmentor, is_segmentor
from dinov3_mm.utils.progress import track


def inference_model(model: nn.Module,
                    images: Union[ImageInput, Sequence[ImageInput]],
                    batch_size: Optional[int] = None,
                    **kwargs) -> List[Dict[str, object]]:
    """Predict on images with a classifier, segmentor or detector.

    A segmentor (:func:`~dinov3_mm.apis.seg_inference.is_segmentor`) runs
    :func:`~dinov3_mm.apis.seg_inference.inference_segmentor`, a detector
    (:func:`~dinov3_mm.apis.det_inference.is_detector`)
    :func:`~dinov3_mm.apis.det_inference.inference_detector`, any other
    model :func:`~dinov3_mm.apis.inference.inference_classifier`; the
    results are theirs, unchanged.

    Args:
        model (nn.Module): Model from :func:`~dinov3_mm.apis.init_model`.
        images (str | ndarray | list): Paths or RGB uint8 ``(H, W, 3)``
            arrays.
        batch_size (int, optional): Images per forward pass; defaults to
            the task's (8 for classification, 4 for segmentation and
            detection).
        **kwargs: Further options of the task's function
            (``skip_unreadable``; segmentation: ``return_probs``;
            detection: ``score_thr``, ``mask_format``).

    Returns:
        list[dict]: One dict per image. Classification: ``pred_label``,
        ``pred_class``, ``pred_score`` and ``scores``. Segmentation:
        ``mask`` and ``ori_shape`` (and ``probs`` with ``return_probs``).
        Detection: ``bboxes``, ``scores``, ``labels``, ``ori_shape`` (and
        ``masks``).
        With ``skip_unreadable``, an image file that cannot be read gets
        ``path`` and ``error`` instead.
    """
    if is_segmentor(model):
        infer = inference_segmentor
    elif is_detector(model):
        infer = inference_detector
    else:
        infer = inference_classifier
    if batch_size is not None:
        kwargs['batch_size'] = batch_size
    return infer(model, images, **kwargs)


def predict_in_batches(
    model: nn.Module,
    paths: Sequence[str],
    batch_size: int,
    skip_unreadable: bool = False,
    done: Optional[List[str]] = None,
    results: Optional[List[dict]] = None,
    skipped: Optional[List[Tuple[str, str]]] = None,
    **kwargs,
) -> Tuple[List[str], List[dict], List[Tuple[str, str]]]:
    """Predict image files batch by batch with a progress bar.

    The lists are filled as batches finish, so a caller that passes its
    own keeps the results made before an error.

    Args:
        model (nn.Module): Model from :func:`~dinov3_mm.apis.init_model`.
        paths (Sequence[str]): Image files.
        batch_size (int): Images per forward pass (at least 1).
        skip_unreadable (bool): Record files that fail to decode in
            ``skipped`` instead of raising. Defaults to False.
        done, results, skipped (list, optional): Lists to append the
            predicted paths, their results and ``(path, reason)`` of skipped
            files to; new lists when omitted.
        **kwargs: Further options of the task's inference function.

    Returns:
        tuple: ``(done, results, skipped)``.

    Raises:
        ValueError: ``batch_size`` is below 1.
        UnreadableImageError: A file fails to decode (without
            ``skip_unreadable``).
    """
    if batch_size < 1:
        raise ValueError(f'batch size {batch_size} must be at least 1')
    done = [] if done is None else done
    results = [] if results is None else results
    skipped = [] if skipped is None else skipped
    batches = [paths[i:i + batch_size]
               for i in range(0, len(paths), batch_size)]
    for batch in track(batches, desc='infer', unit='batch'):
        outputs = inference_model(model, batch, batch_size=len(batch),
                                  skip_unreadable=skip_unreadable,
                                  **kwargs)
        for path, result in zip(batch, outputs):
            if 'error' in result:
                skipped.append((path, result['error']))
            else:
                done.append(path)
                results.append(result)
    return done, results, skipped
