"""Build a trained model from its config and predict on images."""
import csv
import os
import os.path as osp
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Union)

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from torch import nn

from dinov3_mm.datasets.transforms.cache import flatten_cached
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.atomic_write import atomic_write_text
from dinov3_mm.utils.checkpoint_io import load_weights_only
from dinov3_mm.utils.quiet_init import init_weights_quietly
from dinov3_mm.utils.state_dict_loading import load_model_weights
from dinov3_mm.apis.unreadable import (UnreadableImageError,
                                       run_load_pipeline)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')
ImageInput = Union[str, np.ndarray]


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = True) -> nn.Module:
    """Build the config's model and load a checkpoint into it.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): A dinov3_mm / mmengine checkpoint (or a
            ``.safetensors`` state dict); read with ``weights_only=True``.
        device (str): Device to put the model on. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.
        strict (bool): Refuse a checkpoint whose keys or shapes differ from
            the model's. Defaults to True; False loads what fits and logs
            the rest.

    Returns:
        nn.Module: The model in eval mode, with ``cfg``, ``dataset_meta``
        (class names from the checkpoint's meta, else the config's test set)
        and ``checkpoint_meta`` (the checkpoint's ``meta``, e.g. the
        training config as ``cfg`` text in a Runner checkpoint; ``{}``
        without one).

    Raises:
        FileNotFoundError: The checkpoint does not exist.
        CheckpointMismatchError: Its keys or shapes do not match the config's
            model (with ``strict``); the message lists them.
        CheckpointError: Empty, truncated or unsafe checkpoint file.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'dinov3_mm'))
    model_cfg = cfg.model.copy()
    if checkpoint is not None:
        # the checkpoint replaces any pretrained backbone weights
        model_cfg.get('backbone', {}).pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    meta, checkpoint_meta = {}, {}
    if checkpoint is not None:
        ckpt = load_weights_only(checkpoint)
        load_model_weights(
            model, ckpt, strict=strict, checkpoint_name=str(checkpoint),
            config_name=cfg.filename or 'the given config',
            hint='To load only the matching weights on purpose, call '
            'init_model(..., strict=False).')
        checkpoint_meta = dict(ckpt.get('meta') or {})
        meta = checkpoint_meta.get('dataset_meta') or {}
    else:
        init_weights_quietly(model)
    if 'classes' not in meta:
        dataset_cfg = cfg.get('test_dataloader', {}).get('dataset', {})
        if dataset_cfg.get('classes'):
            meta = dict(meta, classes=tuple(dataset_cfg['classes']))
    model.cfg = cfg
    model.dataset_meta = meta
    model.checkpoint_meta = checkpoint_meta
    return model.to(device).eval()


def transform_type_name(step) -> str:
    """Class name of a pipeline step (config dict or transform), without
    its scope (``'mmseg.LoadAnnotations'`` -> ``'LoadAnnotations'``)."""
    kind = step.get('type') if isinstance(step, dict) else type(step)
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return name.split('.')[-1]


def is_annotation_loader(step) -> bool:
    """Whether a pipeline step (config dict or transform) loads labels.

    A transform class says so with ``loads_annotations = True`` (set on
    ``LoadSegAnnotation``, so its subclasses inherit it); plugin loaders
    set it too and are dropped from inference pipelines like the core one.
    """
    kind = step.get('type') if isinstance(step, dict) else type(step)
    if isinstance(kind, str):
        from dinov3_mm.registry import TRANSFORMS
        kind = TRANSFORMS.get(kind)
    return bool(getattr(kind, 'loads_annotations', False))


def build_test_pipeline(cfg: Config, from_array: bool = False) -> Compose:
    """The config's test pipeline for unlabelled inference inputs.

    ``CachedTransforms`` are unwrapped (each input runs once), annotation
    loaders (:func:`is_annotation_loader`) are dropped, and so is
    ``LoadImage`` when the inputs are arrays (``from_array``), which then
    need ``img``, ``img_shape`` and ``ori_shape`` in their data dict.
    """
    pipeline = [dict(t) if isinstance(t, dict) else t
                for t in flatten_cached(cfg.test_dataloader.dataset.pipeline)
                if not is_annotation_loader(t)]
    if from_array:
        pipeline = [t for t in pipeline if transform_type_name(t) != 'LoadImage']
    return Compose(pipeline)


_test_pipeline = build_test_pipeline  # the former private name


def iter_test_outputs(model: nn.Module,
                      items: Sequence[ImageInput],
                      batch_size: int,
                      make_pipeline: Callable[[bool], Compose],
                      skip_unreadable: bool = False
                      ) -> Iterator[Union[object, UnreadableImageError]]:
    """``model.test_step`` output per item, predicted in batches.

    Args:
        model (nn.Module): Model with ``test_step``.
        items (sequence): Paths or RGB uint8 ``(H, W, 3)`` arrays.
        batch_size (int): Items per forward pass.
        make_pipeline (callable): Builds the test pipeline for paths
            (``False``) or arrays (``True``); called once per kind.
        skip_unreadable (bool): Yield an :class:`UnreadableImageError` in
            place of an image file that cannot be read, instead of raising
            it. Defaults to False.

    Yields:
        The data sample of each item, in order (or the error, see above).

    Raises:
        UnreadableImageError: An image file cannot be read (without
            ``skip_unreadable``); the message names it.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size={batch_size} must be >= 1.')
    pipelines = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        samples, errors = [], {}
        for index, item in enumerate(chunk):
            from_array = isinstance(item, np.ndarray)
            if from_array not in pipelines:
                pipelines[from_array] = make_pipeline(from_array)
            data = (dict(img=item, img_shape=item.shape[:2],
                         ori_shape=item.shape[:2]) if from_array else
                    dict(img_path=item))
            try:
                samples.append(run_load_pipeline(pipelines[from_array],
                                                 data))
            except UnreadableImageError as exc:
                if not skip_unreadable:
                    raise
                errors[index] = exc
        outputs = iter(model.test_step(pseudo_collate(samples))
                       if samples else ())
        for index in range(len(chunk)):
            yield errors[index] if index in errors else next(outputs)


def unreadable_result(error: UnreadableImageError) -> Dict[str, object]:
    """The result of an image skipped by ``skip_unreadable``."""
    return dict(path=error.path, error=error.reason)


@torch.no_grad()
def inference_classifier(model: nn.Module,
                         images: Union[ImageInput, Sequence[ImageInput]],
                         batch_size: int = 8,
                         skip_unreadable: bool = False
                         ) -> List[Dict[str, object]]:
    """Classify images with a classifier from :func:`init_model`.

    :func:`~dinov3_mm.apis.task_inference.inference_model` calls it for
    every model that is not a segmentor.

    Args:
        model (nn.Module): Model with ``cfg`` (its test pipeline is used).
        images (str | ndarray | list): Paths or RGB uint8 ``(H, W, 3)`` arrays.
        batch_size (int): Images per forward pass. Defaults to 8.
        skip_unreadable (bool): An image file that cannot be read (empty,
            corrupt, truncated) gets ``{'path', 'error'}`` in place of a
            prediction instead of stopping the run. Defaults to False.

    Returns:
        list[dict]: Per image ``pred_label`` (int, or list for multi-label),
        ``pred_class`` (name(s) when known), ``pred_score`` (max probability)
        and ``scores`` (all probabilities, a list).

    Raises:
        UnreadableImageError: An image file cannot be read (without
            ``skip_unreadable``).
    """
    single = isinstance(images, (str, np.ndarray))
    items = [images] if single else list(images)
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    results = []
    for sample in iter_test_outputs(
            model, items, batch_size,
            lambda from_array: build_test_pipeline(model.cfg, from_array),
            skip_unreadable):
        if isinstance(sample, UnreadableImageError):
            results.append(unreadable_result(sample))
            continue
        labels = sample.pred_label.tolist()
        scores = sample.pred_score.float().cpu()
        label = labels[0] if len(labels) == 1 else labels
        names = None
        if classes is not None:
            names = ([classes[i] for i in labels]
                     if isinstance(label, list) else classes[label])
        results.append(
            dict(pred_label=label, pred_class=names,
                 pred_score=float(scores.max()), scores=scores.tolist()))
    return results


def list_images(source: str, allow_missing: bool = False) -> List[str]:
    """Image paths from a file, a folder (recursive) or a text file list.

    Args:
        source (str): An image file, a folder or a text file with one path
            per line (relative to the list's folder; ``#`` comments).
        allow_missing (bool): Keep listed files that do not exist (for the
            caller to report) instead of raising. Defaults to False.

    Raises:
        FileNotFoundError: The source, or a listed file, does not exist.
        ValueError: A folder or list without images.
    """
    if not osp.exists(source):
        raise FileNotFoundError(f'{source} does not exist.')
    if osp.isdir(source):
        paths = sorted(
            osp.join(root, name) for root, _, files in os.walk(source)
            for name in files if name.lower().endswith(IMAGE_EXTENSIONS))
        if not paths:
            raise ValueError(f'No images ({IMAGE_EXTENSIONS}) under {source}.')
        return paths
    if source.lower().endswith(IMAGE_EXTENSIONS):
        return [source]
    base = osp.dirname(osp.abspath(source))
    paths = []
    with open(source) as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            path = line if osp.isabs(line) else osp.join(base, line)
            if not osp.exists(path) and not allow_missing:
                raise FileNotFoundError(
                    f'{source}, line {line_no}: {line} does not exist.')
            paths.append(path)
    if not paths:
        raise ValueError(f'{source} lists no images.')
    return paths


def write_predictions_csv(paths: Iterable[str], predictions: Sequence[dict],
                          out_file: str,
                          classes: Optional[Sequence[str]] = None) -> str:
    """Write one row per image: path, label, class, score, then every probability."""
    predictions = list(predictions)
    num = len(predictions[0]['scores']) if predictions else 0
    names = list(classes) if classes else [str(i) for i in range(num)]

    def write_rows(f) -> None:
        writer = csv.writer(f)
        writer.writerow(['path', 'pred_label', 'pred_class', 'pred_score'] +
                        [f'prob_{n}' for n in names])
        for path, pred in zip(paths, predictions):
            label, name = pred['pred_label'], pred['pred_class']
            if isinstance(label, list):
                label = ';'.join(map(str, label))
                name = ';'.join(name) if name else ''
            writer.writerow([path, label, name if name is not None else '',
                             f"{pred['pred_score']:.6f}"] +
                            [f'{p:.6f}' for p in pred['scores']])

    atomic_write_text(out_file, write_rows, newline='')
    return out_file
