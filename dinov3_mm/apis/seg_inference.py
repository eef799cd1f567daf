"""Semantic segmentation inference: masks at the original image size, and
the files written from them (index PNGs, overlays, a summary CSV)."""
import csv
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import Compose
from PIL import Image
from torch import nn

from dinov3_mm.apis.inference import (ImageInput, build_test_pipeline,
                                      iter_test_outputs, unreadable_result)
from dinov3_mm.apis.unreadable import UnreadableImageError
from dinov3_mm.utils.atomic_write import atomic_write_text

#: Meta keys the segmentor needs to undo the test pipeline's padding.
_NEEDED_META_KEYS = ('pad_border', )


def is_segmentor(model: nn.Module) -> bool:
    """Whether ``model`` is a segmentor (a :class:`DINOv3Segmentor`, or any
    model with a ``decode_head``)."""
    from dinov3_mm.models.segmentors.dinov3_segmentor import DINOv3Segmentor
    return isinstance(model, DINOv3Segmentor) or hasattr(model, 'decode_head')


def _with_pad_border(pipeline: Compose) -> Compose:
    """Make ``PackSegInputs`` keep ``pad_border`` in the metainfo.

    The segmentor crops the padding out of its logits with it; without it a
    centred ``ResizeKeepRatioPad`` would shift non-square predictions.
    """
    for step in pipeline.transforms:
        if type(step).__name__ != 'PackSegInputs':
            continue
        keys = tuple(getattr(step, 'meta_keys', ()))
        missing = tuple(k for k in _NEEDED_META_KEYS if k not in keys)
        if missing:
            step.meta_keys = keys + missing
    return pipeline


def segmentor_meta(model: nn.Module) -> Tuple[Optional[List[str]],
                                              List[List[int]]]:
    """Class names and palette of a model from :func:`init_model`.

    Read from ``model.dataset_meta`` (a checkpoint saved by the Runner holds
    the training set's ``classes`` and ``palette``), then the config's test
    dataset; the palette defaults to
    :func:`~dinov3_mm.visualization.seg_overlay.default_palette`.
    """
    from dinov3_mm.visualization.seg_overlay import default_palette
    meta = dict(getattr(model, 'dataset_meta', None) or {})
    cfg = getattr(model, 'cfg', None)
    dataset_cfg = {}
    if cfg is not None:
        dataset_cfg = cfg.get('test_dataloader', {}).get('dataset', {}) or {}
    classes = meta.get('classes') or dataset_cfg.get('classes')
    palette = meta.get('palette') or dataset_cfg.get('palette')
    classes = list(classes) if classes else None
    if classes is not None and not isinstance(classes[0], str):
        classes = [str(c) for c in classes]
    if not palette:
        num = len(classes) if classes else None
        if num is None:
            head_classes = getattr(getattr(model, 'decode_head', None),
                                   'num_classes', None)
            num = max(int(head_classes or 2), 2)
        palette = default_palette(num)
    return classes, [[int(c) for c in colour] for colour in palette]


@torch.no_grad()
def inference_segmentor(model: nn.Module,
                        images: Union[ImageInput, Sequence[ImageInput]],
                        batch_size: int = 4,
                        return_probs: bool = False,
                        skip_unreadable: bool = False
                        ) -> List[Dict[str, object]]:
    """Segment images with a segmentor from :func:`init_model`.

    The config's test pipeline is used without its annotation loader (and
    without ``LoadImage`` for arrays); predictions are returned at the
    original image size.

    Args:
        model (nn.Module): Segmentor with ``cfg``.
        images (str | ndarray | list): Paths or RGB uint8 ``(H, W, 3)``
            arrays.
        batch_size (int): Images per forward pass. Defaults to 4.
        return_probs (bool): Also return ``probs``. Defaults to False.
        skip_unreadable (bool): An image file that cannot be read (empty,
            corrupt, truncated) gets ``{'path', 'error'}`` in place of a
            prediction instead of stopping the run. Defaults to False.

    Returns:
        list[dict]: Per image ``mask`` (``(H, W)`` np.uint8 class indices,
        np.int64 with more than 256 classes), ``ori_shape`` and, with
        ``return_probs``, ``probs`` (float32 ``(C, H, W)`` softmax, or the
        ``(1, H, W)`` foreground sigmoid of a binary model).

    Raises:
        UnreadableImageError: An image file cannot be read (without
            ``skip_unreadable``).
    """
    single = isinstance(images, (str, np.ndarray))
    items = [images] if single else list(images)
    results = []
    for sample in iter_test_outputs(
            model, items, batch_size,
            lambda from_array: _with_pad_border(
                build_test_pipeline(model.cfg, from_array)),
            skip_unreadable):
        if isinstance(sample, UnreadableImageError):
            results.append(unreadable_result(sample))
            continue
        labels = sample.pred_sem_seg.data[0].cpu().numpy()
        dtype = np.uint8 if labels.max(initial=0) <= 255 else np.int64
        result = dict(mask=labels.astype(dtype),
                      ori_shape=tuple(labels.shape))
        if return_probs:
            logits = sample.seg_logits.data.float()
            probs = (logits.sigmoid() if logits.shape[0] == 1 else
                     logits.softmax(0))
            result['probs'] = probs.cpu().numpy()
        results.append(result)
    return results


def relative_png_names(paths: Sequence[str],
                       source_root: Optional[str]) -> List[str]:
    """``<relative path without extension>.png`` per image, unique."""
    absolute = [osp.abspath(p) for p in paths]
    if source_root is None:
        dirs = [osp.dirname(p) for p in absolute]
        source_root = osp.commonpath(dirs) if dirs else ''
    elif osp.isfile(source_root):
        source_root = osp.dirname(osp.abspath(source_root))
    source_root = osp.abspath(source_root)
    rels = []
    for path in absolute:
        rel = osp.relpath(path, source_root)
        if rel.startswith(os.pardir):
            rel = osp.basename(path)
        rels.append(rel)
    names = [osp.splitext(r)[0] + '.png' for r in rels]
    counts = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    # a.jpg and a.png in one folder: keep their full names
    return [n if counts[n] == 1 else r + '.png' for n, r in zip(names, rels)]


def save_index_png(mask: np.ndarray, path: str,
                   palette: Sequence[Sequence[int]]) -> str:
    """Write a class-index mask as a PNG that reads back as the indices.

    Up to 256 classes: a palette (``P`` mode) PNG coloured with ``palette``
    (so viewers show the colours, and ``np.asarray(Image.open(path))`` gives
    the indices); otherwise a 16-bit grayscale PNG.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    mask = np.asarray(mask)
    if mask.max(initial=0) <= 255 and mask.min(initial=0) >= 0:
        image = Image.fromarray(mask.astype(np.uint8), mode='P')
        flat = [int(c) for colour in list(palette)[:256] for c in colour]
        image.putpalette(flat + [0] * (768 - len(flat)))
    else:
        image = Image.fromarray(mask.astype(np.uint16))
    image.save(path)
    return path


def write_seg_outputs(paths: Sequence[str],
                      results: Sequence[dict],
                      out_dir: str,
                      palette: Optional[Sequence[Sequence[int]]] = None,
                      classes: Optional[Sequence[str]] = None,
                      overlay: bool = True,
                      source_root: Optional[str] = None,
                      alpha: float = 0.5) -> Dict[str, object]:
    """Write the masks, overlays and a summary of :func:`inference_segmentor`.

    Files, for an image at ``<rel>.<ext>`` relative to ``source_root``:

    * ``{out_dir}/masks/<rel>.png``: palette PNG of the class indices
      (:func:`save_index_png`);
    * ``{out_dir}/overlays/<rel>.png``: the mask blended over the image
      (``overlay=True``);
    * ``{out_dir}/summary.csv``: one row per image with ``path``, ``mask``,
      ``height``, ``width`` and the fraction of pixels of each class
      (``frac_<class>``).

    Args:
        paths (sequence[str]): The image files, in the order of ``results``.
        results (sequence[dict]): Dicts with ``mask``.
        out_dir (str): Output directory.
        palette (sequence, optional): RGB colour per class; defaults to
            :func:`~dinov3_mm.visualization.seg_overlay.default_palette`.
        classes (sequence[str], optional): Class names of the CSV columns.
        overlay (bool): Write overlays. Defaults to True.
        source_root (str, optional): Folder the relative paths start from;
            defaults to the deepest folder holding all images.
        alpha (float): Overlay opacity. Defaults to 0.5.

    Returns:
        dict: ``masks`` and ``overlays`` (lists of paths) and ``summary``.
    """
    from dinov3_mm.datasets.transforms.loading import read_image
    from dinov3_mm.visualization.seg_overlay import (default_palette,
                                                     overlay_mask)
    paths, results = list(paths), list(results)
    if len(paths) != len(results):
        raise ValueError(f'{len(paths)} paths but {len(results)} results.')
    top = max([int(np.asarray(r['mask']).max(initial=0)) + 1
               for r in results] + [len(classes) if classes else 1])
    names = ([str(c) for c in classes] if classes else [])
    names += [str(i) for i in range(len(names), top)]
    if palette is None:
        palette = default_palette(len(names))
    palette = [[int(c) for c in colour] for colour in palette]
    if len(palette) < len(names):
        palette = palette + default_palette(len(names))[len(palette):]

    rel_names = relative_png_names(paths, source_root)
    written = dict(masks=[], overlays=[])
    rows = []
    for path, rel, result in zip(paths, rel_names, results):
        mask = np.asarray(result['mask'])
        mask_path = save_index_png(mask, osp.join(out_dir, 'masks', rel),
                                   palette)
        written['masks'].append(mask_path)
        if overlay:
            image = read_image(path)
            if image.shape[:2] != mask.shape:
                raise ValueError(
                    f'{path} is {image.shape[0]}x{image.shape[1]} but its '
                    f'mask is {mask.shape[0]}x{mask.shape[1]} (HxW).')
            over_path = osp.join(out_dir, 'overlays', rel)
            os.makedirs(osp.dirname(over_path), exist_ok=True)
            Image.fromarray(overlay_mask(image, mask, palette,
                                         alpha)).save(over_path)
            written['overlays'].append(over_path)
        counts = np.bincount(mask.reshape(-1).astype(np.int64)[
            (mask.reshape(-1) >= 0)], minlength=len(names))
        fractions = counts[:len(names)] / max(mask.size, 1)
        rows.append([path, mask_path, mask.shape[0], mask.shape[1]] +
                    [f'{f:.6f}' for f in fractions])
    summary = osp.join(out_dir, 'summary.csv')

    def write_summary(f) -> None:
        writer = csv.writer(f)
        writer.writerow(['path', 'mask', 'height', 'width'] +
                        [f'frac_{n}' for n in names])
        writer.writerows(rows)

    atomic_write_text(summary, write_summary, newline='')
    written['summary'] = summary
    return written
