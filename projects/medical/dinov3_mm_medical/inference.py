"""Slice-batched inference on whole volumes, stitched back into a volume.

A volume is reoriented as the config's test dataset says (``orientation``),
cut into slices along its ``axis`` (with the same ``context`` for 2.5D),
each batch of slices goes through the config's test pipeline (without the
mask loader) and the segmentor, and the per-slice predictions are stacked
and brought back to the stored voxel order, so they lie on the input's grid.
Slices are resized as in training (:mod:`.resolution`); progress bars (per
volume and per slice batch) show on a terminal or with
``DINOV3_MM_PROGRESS=1``.
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from torch import nn

from dinov3_mm.apis import (header_problems, is_annotation_loader,
                            transform_type_name, write_skipped_csv)
from dinov3_mm.utils import track

from .dice import dice_per_class, format_dice_table, write_dice_csv
from .io import (Volume, check_same_grid, is_dicom_series_folder,
                 is_nifti_path, list_volumes, load_volume, reorient,
                 read_geometry, undo_reorient, volume_stem,
                 write_label_nifti)
from .resolution import match_training_size
from .slicing import check_axis, check_context, stack_slices
from .transforms.loading import volume_key

#: Meta keys the segmentor needs to undo the test pipeline's resizing.
NEEDED_META_KEYS = ('ori_shape', 'img_shape', 'pad_border')

SlicePredictor = Callable[[List[dict]], List[np.ndarray]]


def slice_settings(cfg) -> Dict[str, object]:
    """``axis``, ``context`` and ``orientation`` of the config's test
    dataset (defaults 2, 0, None)."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {}) or {}
    return dict(axis=check_axis(dataset.get('axis', 2)),
                context=check_context(dataset.get('context', 0)),
                orientation=dataset.get('orientation'))


def build_volume_pipeline(cfg) -> Compose:
    """The config's test pipeline without mask loaders.

    Raises:
        ValueError: the pipeline does not load volume slices.
    """
    steps = [dict(t) if isinstance(t, dict) else t
             for t in cfg.test_dataloader.dataset.pipeline
             if not is_annotation_loader(t)]
    if not steps or transform_type_name(steps[0]) != 'LoadVolumeSlice':
        raise ValueError(
            'Volume inference needs a config whose test pipeline starts with '
            "LoadVolumeSlice (e.g. configs/medical/vitb16_unet_mri.py); got "
            f'{[transform_type_name(t) for t in steps]}.')
    for step in steps:
        if isinstance(step, dict) and step.get('type') == 'PackSegInputs':
            keys = tuple(step.get('meta_keys', ()))
            if keys:
                step['meta_keys'] = keys + tuple(
                    k for k in NEEDED_META_KEYS if k not in keys)
    return Compose(steps)


class SegmentorSlicePredictor:
    """Predict slice batches with a segmentor from ``init_model``.

    Args:
        model (nn.Module): Segmentor with ``cfg``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.pipeline = build_volume_pipeline(model.cfg)

    @torch.no_grad()
    def __call__(self, batch: List[dict]) -> List[np.ndarray]:
        """Labels ``(H, W)`` per slice data dict."""
        samples = [self.pipeline(dict(item)) for item in batch]
        outputs = self.model.test_step(pseudo_collate(samples))
        return [s.pred_sem_seg.data[0].cpu().numpy() for s in outputs]


def predict_volume(volume: Volume,
                   predictor: SlicePredictor,
                   axis: int = 2,
                   context: int = 0,
                   orientation: Optional[str] = None,
                   batch_size: int = 8) -> np.ndarray:
    """Predict every slice of ``volume`` and stitch the labels.

    Args:
        volume (Volume): The image volume (with data).
        predictor (callable): Maps a list of slice data dicts (``img_path``,
            ``volume``, ``volume_key``, ``slice_index``, ``slice_axis``,
            ``context``, ``orientation``, ``slice_id``) to one ``(H, W)``
            label array each.
        axis (int): Slicing axis of the reoriented array. Defaults to 2.
        context (int): 2.5D neighbours per side. Defaults to 0.
        orientation (str, optional): Axis codes to slice in (None: stored
            order).
        batch_size (int): Slices per call of ``predictor``. Defaults to 8.

    Returns:
        np.ndarray: Labels on the volume's stored grid (``volume.shape``).
    """
    if batch_size < 1:
        raise ValueError(f'batch_size={batch_size} must be >= 1.')
    axis = check_axis(axis)
    data, _ = reorient(volume.data, volume.affine, orientation)
    data = np.ascontiguousarray(data, dtype=np.float32)
    expected = tuple(s for a, s in enumerate(data.shape) if a != axis)
    key = volume_key(volume.path, orientation)
    case = volume_stem(volume.path)
    slices: List[np.ndarray] = []
    starts = range(0, data.shape[axis], batch_size)
    for start in track(starts, desc=f'{case}: slices', unit='batch'):
        batch = [
            dict(img_path=volume.path, volume=data, volume_key=key,
                 slice_index=k, slice_axis=axis, context=context,
                 orientation=orientation, case=case,
                 slice_id=f'{case}_{"ijk"[axis]}{k:03d}')
            for k in range(start, min(start + batch_size, data.shape[axis]))
        ]
        for item, labels in zip(batch, predictor(batch)):
            labels = np.asarray(labels)
            if labels.shape != expected:
                raise ValueError(
                    f'{volume.path} slice {item["slice_index"]}: prediction '
                    f'is {labels.shape}, expected {expected}; the test '
                    'pipeline must keep ori_shape, img_shape and pad_border '
                    'in the packed metainfo.')
            slices.append(labels)
    stacked = stack_slices(slices, axis)
    return undo_reorient(stacked, volume.affine, orientation)


def infer_volume(model: nn.Module, volume: Volume,
                 batch_size: int = 8) -> np.ndarray:
    """Labels of ``volume`` from a segmentor built by ``init_model`` with a
    volume-slice config (slicing settings from its test dataset)."""
    settings = slice_settings(model.cfg)
    return predict_volume(volume, SegmentorSlicePredictor(model),
                          batch_size=batch_size, **settings)


def collect_inputs(source: str) -> List[str]:
    """Volumes named by ``source``: a NIfTI file, a DICOM series folder, or
    a folder of NIfTI files and / or DICOM series sub-folders.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: no volume found.
    """
    if not osp.exists(source):
        raise FileNotFoundError(f'Input {source} does not exist.')
    if osp.isfile(source):
        if not is_nifti_path(source):
            raise ValueError(f'Input {source} is not a .nii / .nii.gz file; '
                             'give a NIfTI file, a DICOM series folder or a '
                             'folder of volumes.')
        return [source]
    if is_dicom_series_folder(source):
        return [source]
    found = list_volumes(source)
    if not found:
        raise ValueError(
            f'No volume in {source}: expected .nii / .nii.gz files or DICOM '
            'series sub-folders (or the folder itself holding one DICOM '
            'series).')
    return found


def match_ground_truth(inputs: Sequence[str], gt: str) -> Dict[str, str]:
    """Ground-truth volume of each input.

    ``gt`` is one volume (a single input) or a folder whose volumes are
    matched by case name (file name without ``.nii[.gz]``, or folder name).

    Raises:
        FileNotFoundError: ``gt`` missing, or an input without ground
            truth (the message names it and the names tried).
    """
    if not osp.exists(gt):
        raise FileNotFoundError(f'Ground truth {gt} does not exist.')
    single = osp.isfile(gt) or is_dicom_series_folder(gt)
    if single:
        if len(inputs) != 1:
            raise ValueError(f'Ground truth {gt} is one volume but there are '
                             f'{len(inputs)} inputs; give a folder of '
                             'ground-truth volumes named like the inputs.')
        return {inputs[0]: gt}
    by_case = {volume_stem(p): p for p in list_volumes(gt)}
    matched = {}
    for path in inputs:
        case = volume_stem(path)
        if case not in by_case:
            raise FileNotFoundError(
                f'No ground truth for {path} in {gt}: expected {case}.nii.gz, '
                f'{case}.nii or a DICOM series folder {case}/.')
        matched[path] = by_case[case]
    return matched


def output_path(input_path: str, out_dir: str) -> str:
    """``<out_dir>/<case>.nii`` for a ``.nii`` input, else ``.nii.gz``."""
    suffix = '.nii' if input_path.lower().endswith('.nii') else '.nii.gz'
    return osp.join(out_dir, volume_stem(input_path) + suffix)


def class_names(model: nn.Module) -> List[str]:
    """Class names of a model from ``init_model`` (checkpoint meta, then
    the config), else ``class_<i>`` for the head's classes."""
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = meta.get('classes')
    if not classes:
        dataset = model.cfg.get('test_dataloader', {}).get('dataset', {})
        classes = dataset.get('classes')
    if classes:
        return [str(c) for c in classes]
    num = int(getattr(model.decode_head, 'num_classes', 2))
    return [f'class_{i}' for i in range(num)]


class UnreadableVolumeError(ValueError):
    """An input volume that cannot be read; the message names it.

    Args:
        path (str): The volume.
        reason (str): The reader's message.
        done (list[str]): Label maps written before it.
    """

    def __init__(self, path: str, reason: str,
                 done: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.done = list(done)


def geometry_problem(path: str) -> Optional[str]:
    """Why the header (shape, affine, DICOM tags) of ``path`` cannot be
    read, or None; the voxels are not read."""
    try:
        read_geometry(path)
    except (OSError, ValueError) as exc:
        return str(exc)
    return None


def run_volume_inference(config: str,
                         checkpoint: str,
                         source: str,
                         out_dir: str,
                         gt: Optional[str] = None,
                         batch_size: int = 8,
                         device: str = 'cpu',
                         cfg_options: Optional[dict] = None,
                         skip_unreadable: bool = False,
                         keep_test_size: bool = False,
                         log: Callable[[str], None] = print) -> dict:
    """Predict every volume of ``source``, write NIfTI label maps and,
    with ``gt``, per-volume Dice.

    Every input's header is read before the model is built, so a missing
    or corrupt file stops the run before any work. Voxel data that fails to
    read later (e.g. a truncated ``.nii.gz``) stops the run after the
    volumes before it are written (and their Dice, with ``gt``).

    Args:
        config (str): Config file (a volume-slice test dataset and
            pipeline).
        checkpoint (str): Trained checkpoint (read with weights_only by
            the core ``init_model``).
        source (str): See :func:`collect_inputs`.
        out_dir (str): Output folder: ``<case>.nii[.gz]`` per volume,
            ``dice.csv`` and, with skipped volumes, ``skipped.csv``.
        gt (str, optional): See :func:`match_ground_truth`.
        batch_size (int): Slices per forward pass. Defaults to 8.
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides.
        skip_unreadable (bool): Skip volumes that cannot be read (listed
            in ``skipped`` and ``<out_dir>/skipped.csv``) instead of
            stopping. Defaults to False.
        keep_test_size (bool): Infer at the config's test size even when
            the model was trained at another (see
            :func:`~.resolution.match_training_size`). Defaults to False.
        log (callable): Receives the notes (sizes, skipped volumes).
            Defaults to ``print``.

    Returns:
        dict: ``outputs`` (written files), ``classes``, ``dice`` (list of
        ``(case, per-class array)``), ``dice_csv`` (path or None),
        ``table`` (text, or None), ``skipped`` (``(path, reason)`` pairs),
        ``skipped_csv`` (path or None) and ``size_note`` (str or None).

    Raises:
        UnreadableVolumeError: A volume cannot be read (without
            ``skip_unreadable``).
    """
    from dinov3_mm.apis import init_model
    inputs = collect_inputs(source)
    skipped = header_problems(inputs, geometry_problem)
    if skipped and not skip_unreadable:
        path, reason = skipped[0]
        raise UnreadableVolumeError(path, reason)
    bad = {path for path, _ in skipped}
    inputs = [path for path in inputs if path not in bad]
    truths = match_ground_truth(inputs, gt) if gt is not None else {}
    model = init_model(config, checkpoint, device=device,
                       cfg_options=cfg_options)
    size_note = match_training_size(model, keep_test_size)
    if size_note:
        log(size_note)
    classes = class_names(model)
    ignore = (model.cfg.get('test_dataloader', {}).get('dataset', {})
              .get('ignore_index', 255))
    predictor = SegmentorSlicePredictor(model)
    settings = slice_settings(model.cfg)
    outputs, rows = [], []
    result = dict(outputs=outputs, classes=classes, dice=rows, dice_csv=None,
                  table=None, skipped=skipped, skipped_csv=None,
                  size_note=size_note)
    try:
        for path in track(inputs, desc='volumes', unit='volume'):
            try:
                volume = load_volume(path)
            except (OSError, ValueError) as exc:
                if not skip_unreadable:
                    raise UnreadableVolumeError(path, str(exc),
                                                outputs) from exc
                skipped.append((path, str(exc)))
                continue
            truth = None
            if path in truths:  # check the grid before spending time
                truth = load_volume(truths[path], label=True)
                check_same_grid(volume, truth)
            labels = predict_volume(volume, predictor, batch_size=batch_size,
                                    **settings)
            outputs.append(
                write_label_nifti(labels, volume, output_path(path, out_dir)))
            if truth is not None:
                rows.append((volume_stem(path),
                             dice_per_class(labels, truth.data, len(classes),
                                            ignore)))
    finally:  # the Dice of the volumes done survives a later failure
        if rows:
            result['dice_csv'] = write_dice_csv(
                rows, classes, osp.join(out_dir, 'dice.csv'))
            result['table'] = format_dice_table(rows, classes)
    if skipped:
        for path, reason in skipped:
            log(f'skipped {path}: {reason}')
        result['skipped_csv'] = write_skipped_csv(
            skipped, osp.join(out_dir, 'skipped.csv'))
    return result
