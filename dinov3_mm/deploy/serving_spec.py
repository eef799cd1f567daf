"""The serving contract of an exported model, read from its config.

A server receives encoded image bytes. :func:`serving_spec` turns the test
pipeline of a config and the model's data preprocessor into a JSON-able
description of the preprocessing (decode, resize/pad, normalise) plus the
class names and the exported input size.
:func:`dinov3_mm.utils.image_ops.preprocess_encoded` applies it with the code
the test pipeline itself runs; the Triton preprocessing model reads the same
spec from ``preprocess.json``. Its ``limits`` bound what a server decodes
(:func:`~dinov3_mm.utils.image_ops.check_image_limits`).
"""
from typing import Optional, Sequence

from torch import nn

from dinov3_mm.apis.inference import is_annotation_loader, transform_type_name
from dinov3_mm.datasets.transforms.cache import flatten_cached
from dinov3_mm.utils.image_ops import (DEFAULT_MAX_IMAGE_BYTES,
                                       DEFAULT_MAX_IMAGE_PIXELS)

from .errors import ExportError

#: Test-pipeline transforms a served model can reproduce.
SERVABLE_TRANSFORMS = ('LoadImage', 'ResizeKeepRatioPad', 'DetLetterbox')
#: Transforms that only pack results (or load annotations); ignored, as are
#: annotation loaders (:func:`is_annotation_loader`).
PASSIVE_TRANSFORMS = ('LoadAnnotations', 'PackClsInputs', 'PackSegInputs',
                      'PackInputs', 'LoadDetAnnotations', 'PackDetInputs')
#: Served score threshold of detections when neither the caller nor the
#: model's ``test_cfg['score_thr']`` gives one.
DEFAULT_SCORE_THRESHOLD = 0.3


def _letterbox(args: dict) -> dict:
    """``DetLetterbox`` arguments (size ``(w, h)``) as a resize entry."""
    size = args.get('size', 640)
    w, h = (size, size) if isinstance(size, int) else size
    pad_val = args.get('pad_val', 114)
    return dict(size=[int(h), int(w)],
                pad_val=pad_val if isinstance(pad_val, int) else list(pad_val),
                interpolation=args.get('interpolation', 'bilinear'),
                center=bool(args.get('center', True)))


def _pipeline_steps(pipeline: Sequence[dict], config_name: str) -> dict:
    decode: dict = dict(to_rgb=True, depth_scaling='fixed',
                        alpha_background=[0, 0, 0], exif_orientation=True)
    resize = None
    for transform in flatten_cached(pipeline):
        name = transform_type_name(transform)
        args = {k: v for k, v in transform.items() if k != 'type'}
        if name == 'LoadImage':
            decode.update(args)
            decode['alpha_background'] = list(decode['alpha_background'])
        elif name == 'ResizeKeepRatioPad':
            size = args.get('size', 224)
            size = [size, size] if isinstance(size, int) else list(size)
            pad_val = args.get('pad_val', 0)
            resize = dict(
                size=[int(s) for s in size],
                pad_val=pad_val if isinstance(pad_val, int) else list(pad_val),
                interpolation=args.get('interpolation', 'bilinear'),
                center=bool(args.get('center', True)))
        elif name == 'DetLetterbox':
            resize = _letterbox(args)
        elif not (name in PASSIVE_TRANSFORMS
                  or is_annotation_loader(transform)):
            raise ExportError(
                f'Test pipeline of {config_name} uses {name}, which the '
                f'served preprocessing cannot reproduce (supported: '
                f'{", ".join(SERVABLE_TRANSFORMS)}). Use ResizeKeepRatioPad '
                f'(detection: DetLetterbox, which also fixes the input size) '
                f'in test_dataloader.dataset.pipeline, or preprocess on the '
                f'client and send the model input tensor.')
    if resize is None:
        raise ExportError(
            f'Test pipeline of {config_name} has no ResizeKeepRatioPad (or '
            f'DetLetterbox): the exported model needs a fixed input size. '
            f'Add dict(type="ResizeKeepRatioPad", size=...) (detection: '
            f'dict(type="DetLetterbox", size=(w, h))) before packing.')
    return dict(decode=decode, resize=resize)


def _normalization(preprocessor: nn.Module) -> dict:
    mean = getattr(preprocessor, 'mean', None)
    if not getattr(preprocessor, '_enable_normalize', mean is not None):
        mean = None
    if mean is None:
        return dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0],
                    swap_rb=bool(getattr(preprocessor, '_channel_conversion',
                                         False)))
    return dict(mean=[float(v) for v in preprocessor.mean.flatten()],
                std=[float(v) for v in preprocessor.std.flatten()],
                swap_rb=bool(getattr(preprocessor, '_channel_conversion',
                                     False)))


def serving_limits(max_image_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
                   max_image_bytes: Optional[int] = DEFAULT_MAX_IMAGE_BYTES
                   ) -> dict:
    """The ``limits`` entry of a serving spec, validated.

    Args:
        max_image_pixels (int, optional): Most pixels (width x height) an
            image header may declare; None: no limit. Defaults to 40 MP.
        max_image_bytes (int, optional): Most encoded bytes per image;
            None: no limit. Defaults to 32 MiB.

    Raises:
        ValueError: A limit is not a positive whole number.
    """
    limits = dict(max_image_pixels=max_image_pixels,
                  max_image_bytes=max_image_bytes)
    for key, value in limits.items():
        if value is not None and not _positive_whole(value):
            raise ValueError(f'--{key.replace("_", "-")} must be a positive '
                             f'whole number (or None for no limit), got '
                             f'{value}.')
        limits[key] = None if value is None else int(value)
    return limits


def _positive_whole(value) -> bool:
    try:
        return (not isinstance(value, bool) and value >= 1
                and int(value) == value)
    except (TypeError, ValueError, OverflowError):
        return False


def serving_spec(model: nn.Module, task: str,
                 classes: Optional[Sequence[str]] = None,
                 config_name: str = 'the config',
                 max_image_pixels: Optional[int] = DEFAULT_MAX_IMAGE_PIXELS,
                 max_image_bytes: Optional[int] = DEFAULT_MAX_IMAGE_BYTES,
                 score_threshold: Optional[float] = None) -> dict:
    """Everything a server needs besides the ONNX file.

    Args:
        model (nn.Module): Model from :func:`~dinov3_mm.apis.init_model`
            (``cfg``, ``dataset_meta`` and ``data_preprocessor`` are read).
        task (str): ``'classification'``, ``'segmentation'`` or
            ``'features'``.
        classes (sequence[str], optional): Class names; default: the
            model's ``dataset_meta``.
        config_name (str): Named in error messages.
        max_image_pixels (int, optional): See :func:`serving_limits`.
        max_image_bytes (int, optional): See :func:`serving_limits`.
        score_threshold (float, optional): Detection: served detections
            score at least this; default: the model's
            ``test_cfg['score_thr']``, else
            :data:`DEFAULT_SCORE_THRESHOLD`.

    Returns:
        dict: ``task``, ``input_size`` ``[h, w]``, ``decode``, ``resize``,
        ``normalize``, ``classes``, ``threshold``, ``limits``
        (``max_image_pixels``, ``max_image_bytes``); detection also
        ``detection`` (``score_threshold``, ``mask_threshold``,
        ``with_mask``, ``num_detections``).

    Raises:
        ExportError: The test pipeline holds a transform the server cannot
            reproduce, or no fixed-size resize.
        ValueError: A limit is not a positive whole number.
    """
    limits = serving_limits(max_image_pixels, max_image_bytes)
    pipeline = model.cfg.test_dataloader.dataset.pipeline
    spec = _pipeline_steps(pipeline, config_name)
    spec['normalize'] = _normalization(model.data_preprocessor)
    divisor = int(getattr(model.data_preprocessor, 'pad_size_divisor', 1))
    if any(s % divisor for s in spec['resize']['size']):
        raise ExportError(
            f'Test size {spec["resize"]["size"]} of {config_name} is not a '
            f'multiple of pad_size_divisor={divisor}; pick a ResizeKeepRatioPad '
            f'size divisible by {divisor}.')
    if classes is None:
        classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    spec.update(task=task, input_size=list(spec['resize']['size']),
                classes=[str(c) for c in classes] if classes else None,
                threshold=float(getattr(model, 'threshold', 0.5)),
                limits=limits)
    if task == 'detection':
        spec['detection'] = _detection_entry(model, score_threshold)
    return spec


def _detection_entry(model: nn.Module,
                     score_threshold: Optional[float]) -> dict:
    from .det_export import num_detections
    test_cfg = dict(getattr(model, 'test_cfg', None) or {})
    if score_threshold is None:
        score_threshold = test_cfg.get('score_thr', DEFAULT_SCORE_THRESHOLD)
    return dict(score_threshold=float(score_threshold),
                mask_threshold=float(test_cfg.get('mask_threshold', 0.0)),
                with_mask=bool(getattr(model, 'with_mask', False)),
                num_detections=num_detections(model))
