"""Detection and instance-segmentation inference: detections in original
image pixels, and the files written from them (drawn PNGs, COCO JSON)."""
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from dinov3_mm.apis.inference import (ImageInput, build_test_pipeline,
                                      iter_test_outputs, unreadable_result)
from dinov3_mm.apis.unreadable import UnreadableImageError
from dinov3_mm.utils.atomic_write import atomic_write_text

MASK_FORMATS = ('bitmap', 'rle')


def is_detector(model: nn.Module) -> bool:
    """Whether ``model`` is a DETR-style detector (:class:`DINOv3DETR` or
    anything with its interface: ``forward_heads``, ``num_queries``,
    ``num_classes`` and ``test_cfg``)."""
    return all(hasattr(model, name) for name in
               ('forward_heads', 'num_queries', 'num_classes', 'test_cfg'))


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(v) for v in rle['size']],
                counts=rle['counts'].decode('ascii'))


def _decode(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils
    counts = rle['counts']
    return mask_utils.decode(dict(size=rle['size'], counts=counts.encode(
        'ascii') if isinstance(counts, str) else counts)).astype(bool)


@torch.no_grad()
def inference_detector(model: nn.Module,
                       images: Union[ImageInput, Sequence[ImageInput]],
                       batch_size: int = 4,
                       score_thr: float = 0.0,
                       mask_format: str = 'bitmap',
                       skip_unreadable: bool = False
                       ) -> List[Dict[str, object]]:
    """Detect objects (and their masks) with a detector from
    :func:`~dinov3_mm.apis.init_model`.

    Images go through the config's test pipeline (annotation loaders
    dropped; ``LoadImage`` too for arrays); the detections are the model's
    ``predict`` output, in original-image pixels.

    Args:
        model (nn.Module): Detector with ``cfg``.
        images (str | ndarray | list): Paths or RGB uint8 ``(H, W, 3)``
            arrays.
        batch_size (int): Images per forward pass. Defaults to 4.
        score_thr (float): Keep detections scoring at least this. Defaults
            to 0 (all ``test_cfg['num_select']``).
        mask_format (str): ``'bitmap'`` (bool ``(K, H, W)`` arrays) or
            ``'rle'`` (a list of COCO compressed RLE dicts, ``counts`` a
            str: compact for many images). Defaults to ``'bitmap'``.
        skip_unreadable (bool): An unreadable image file gets ``{'path',
            'error'}`` instead of stopping the run. Defaults to False.

    Returns:
        list[dict]: Per image ``bboxes`` float32 ``(K, 4)`` xyxy,
        ``scores`` float32 ``(K,)`` (best first), ``labels`` int64 ``(K,)``,
        ``ori_shape`` ``(h, w)`` and, for mask models, ``masks``.

    Raises:
        UnreadableImageError: An image file cannot be read (without
            ``skip_unreadable``).
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(f'mask_format must be one of {MASK_FORMATS}, got '
                         f'{mask_format!r}.')
    single = isinstance(images, (str, np.ndarray))
    items = [images] if single else list(images)
    results = []
    for sample in iter_test_outputs(
            model, items, batch_size,
            lambda from_array: build_test_pipeline(model.cfg, from_array),
            skip_unreadable):
        if isinstance(sample, UnreadableImageError):
            results.append(unreadable_result(sample))
            continue
        pred = sample.pred_instances
        scores = pred.scores.float().cpu().numpy()
        keep = np.flatnonzero(scores >= score_thr)
        ori_h, ori_w = (int(v) for v in sample.metainfo['ori_shape'][:2])
        result = dict(bboxes=pred.bboxes.float().cpu().numpy()[keep],
                      scores=scores[keep],
                      labels=pred.labels.cpu().numpy().astype(np.int64)[keep],
                      ori_shape=(ori_h, ori_w))
        if 'masks' in pred:
            masks = pred.masks.cpu().numpy()[keep].astype(bool)
            result['masks'] = (masks if mask_format == 'bitmap' else
                               [_rle(m) for m in masks])
        results.append(result)
    return results


def detector_meta(model: nn.Module) -> Dict[str, Optional[list]]:
    """``classes`` and ``cat_ids`` (COCO category id per label) of a model.

    Read from ``model.dataset_meta`` (a Runner checkpoint holds the
    training set's metainfo), then the config's test dataset: its
    ``metainfo``, else the dataset itself when it can be built (a COCO
    annotation file names the ids). ``cat_ids`` is None when unknown.
    """
    meta = dict(getattr(model, 'dataset_meta', None) or {})
    cfg = getattr(model, 'cfg', None)
    dataset_cfg = {}
    if cfg is not None:
        dataset_cfg = cfg.get('test_dataloader', {}).get('dataset', {}) or {}
    for source in (dataset_cfg.get('metainfo') or {}, dataset_cfg):
        for key in ('classes', 'cat_ids'):
            if not meta.get(key) and source.get(key):
                meta[key] = source[key]
    if not meta.get('cat_ids') and dataset_cfg:
        try:
            from dinov3_mm.registry import DATASETS
            built = copy.deepcopy(dataset_cfg)
            built['lazy_init'] = True
            dataset = DATASETS.build(built)
            dataset.full_init()
            for key in ('classes', 'cat_ids'):
                if not meta.get(key) and dataset.metainfo.get(key):
                    meta[key] = dataset.metainfo[key]
        except Exception:  # no annotation file at hand: labels + 1
            pass
    classes = meta.get('classes')
    cat_ids = meta.get('cat_ids')
    return dict(classes=[str(c) for c in classes] if classes else None,
                cat_ids=[int(c) for c in cat_ids] if cat_ids else None)


def predictions_to_coco(paths: Sequence[str], results: Sequence[dict],
                        classes: Optional[Sequence[str]] = None,
                        cat_ids: Optional[Sequence[int]] = None) -> dict:
    """Detections as a COCO dataset dict with scored annotations.

    ``images`` get ids ``1..N`` in order, ``annotations`` the detections
    (``bbox`` ``[x, y, w, h]``, ``score``, ``area``, ``iscrowd`` 0 and, for
    masks, ``segmentation`` as compressed RLE), ``categories`` the classes.
    ``pycocotools.coco.COCO`` loads the file, and its ``annotations`` list
    is a result list for ``COCO.loadRes`` against a ground truth whose
    images have the same ids.

    Args:
        paths (sequence[str]): Image files (``file_name``).
        results (sequence[dict]): From :func:`inference_detector`.
        classes (sequence[str], optional): Category names.
        cat_ids (sequence[int], optional): Category id per label; default
            ``label + 1``.
    """
    num = max([len(classes or ()), len(cat_ids or ())] +
              [int(r['labels'].max(initial=-1)) + 1 for r in results])
    ids = list(cat_ids) if cat_ids else list(range(1, num + 1))
    if len(ids) < num:
        raise ValueError(f'{len(ids)} category ids for {num} classes.')
    names = list(classes or [])
    names += [str(i) for i in range(len(names), len(ids))]
    images, annotations = [], []
    for image_id, (path, result) in enumerate(zip(paths, results), 1):
        h, w = result['ori_shape']
        images.append(dict(id=image_id, file_name=str(path), height=int(h),
                           width=int(w)))
        masks = result.get('masks')
        for k, (box, score, label) in enumerate(zip(
                result['bboxes'], result['scores'], result['labels'])):
            x1, y1, x2, y2 = (float(v) for v in box)
            ann = dict(id=len(annotations) + 1, image_id=image_id,
                       category_id=int(ids[int(label)]),
                       bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score),
                       area=(x2 - x1) * (y2 - y1), iscrowd=0)
            if masks is not None:
                rle = (masks[k] if isinstance(masks[k], dict) else
                       _rle(np.asarray(masks[k])))
                ann['segmentation'] = rle
                ann['area'] = float(_decode(rle).sum())
            annotations.append(ann)
    categories = [dict(id=int(i), name=n) for i, n in zip(ids, names)]
    return dict(images=images, annotations=annotations,
                categories=categories)


def write_det_outputs(paths: Sequence[str],
                      results: Sequence[dict],
                      out_dir: str,
                      classes: Optional[Sequence[str]] = None,
                      cat_ids: Optional[Sequence[int]] = None,
                      score_thr: float = 0.3,
                      draw: bool = True,
                      source_root: Optional[str] = None) -> Dict[str, object]:
    """Write the pictures and the COCO JSON of :func:`inference_detector`.

    Files, for an image at ``<rel>.<ext>`` relative to ``source_root``:

    * ``{out_dir}/vis/<rel>.png``: boxes, class names, scores and masks of
      the detections scoring at least ``score_thr`` (``draw=True``);
    * ``{out_dir}/predictions.json``: every detection in ``results`` (see
      :func:`predictions_to_coco`).

    Returns:
        dict: ``pictures`` (list of paths) and ``json`` (path).
    """
    from dinov3_mm.apis.seg_inference import relative_png_names
    from dinov3_mm.datasets.transforms.loading import read_image
    from dinov3_mm.engine.hooks.det_vis_hook import draw_instances
    from PIL import Image
    paths, results = list(paths), list(results)
    if len(paths) != len(results):
        raise ValueError(f'{len(paths)} paths but {len(results)} results.')
    written: Dict[str, object] = dict(pictures=[])
    if draw:
        for path, rel, result in zip(
                paths, relative_png_names(paths, source_root), results):
            keep = np.flatnonzero(result['scores'] >= score_thr)
            masks = result.get('masks')
            if masks is not None:
                masks = np.stack([
                    _decode(masks[k]) if isinstance(masks[k], dict) else
                    np.asarray(masks[k], bool) for k in keep
                ]) if len(keep) else np.zeros((0, ) + tuple(
                    result['ori_shape']), bool)
            picture = draw_instances(
                read_image(path), result['bboxes'][keep],
                result['labels'][keep], result['scores'][keep], masks,
                classes, score_thr)
            target = osp.join(out_dir, 'vis', rel)
            os.makedirs(osp.dirname(target), exist_ok=True)
            Image.fromarray(picture).save(target)
            written['pictures'].append(target)
    coco = predictions_to_coco(paths, results, classes, cat_ids)
    json_path = osp.join(out_dir, 'predictions.json')
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(json_path, lambda f: json.dump(coco, f))
    written['json'] = json_path
    return written
