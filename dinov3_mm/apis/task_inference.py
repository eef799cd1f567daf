"""One inference entry for every task: the model decides which one runs."""
from typing import Dict, List, Optional, Sequence, Union

from torch import nn

from dinov3_mm.apis.inference import ImageInput, inference_classifier
from dinov3_mm.apis.seg_inference import inference_segmentor, is_segmentor


def inference_model(model: nn.Module,
                    images: Union[ImageInput, Sequence[ImageInput]],
                    batch_size: Optional[int] = None,
                    **kwargs) -> List[Dict[str, object]]:
    """Predict on images with a classifier or a segmentor.

    A segmentor (:func:`~dinov3_mm.apis.seg_inference.is_segmentor`) runs
    :func:`~dinov3_mm.apis.seg_inference.inference_segmentor`, any other
    model :func:`~dinov3_mm.apis.inference.inference_classifier`; the
    results are theirs, unchanged.

    Args:
        model (nn.Module): Model from :func:`~dinov3_mm.apis.init_model`.
        images (str | ndarray | list): Paths or RGB uint8 ``(H, W, 3)``
            arrays.
        batch_size (int, optional): Images per forward pass; defaults to
            the task's (8 for classification, 4 for segmentation).
        **kwargs: Further options of the task's function
            (``skip_unreadable``; segmentation: ``return_probs``).

    Returns:
        list[dict]: One dict per image. Classification: ``pred_label``,
        ``pred_class``, ``pred_score`` and ``scores``. Segmentation:
        ``mask`` and ``ori_shape`` (and ``probs`` with ``return_probs``).
        With ``skip_unreadable``, an image file that cannot be read gets
        ``path`` and ``error`` instead.
    """
    infer = (inference_segmentor
             if is_segmentor(model) else inference_classifier)
    if batch_size is not None:
        kwargs['batch_size'] = batch_size
    return infer(model, images, **kwargs)
