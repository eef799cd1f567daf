"""COCO evaluation of boxes and instance masks: RLE, COCO dicts and mAP.

Pure functions over numpy arrays and plain dicts; the metric class
:class:`~dinov3_mm.evaluation.metrics.CocoMetric` is built on them.

The evaluator is one of two maintained implementations of the COCO protocol
with the same API: ``faster_coco_eval`` (C++ matching and accumulation) and
``pycocotools`` (the reference; matching is a Python loop per image, class
and area range). Both give the same numbers (the tests check it);
``faster_coco_eval`` is the default because it was measured faster on the
same synthetic predictions (``tools/analysis/benchmark_coco_eval.py``;
"Detection evaluation" in ``docs/benchmarks.md``): 200 images of 640 px with
50 objects and 100 predictions each, best of 3 alternating rounds, 0.20 s vs
2.37 s for boxes (12x) and 0.79 s vs 3.78 s for masks (4.8x; mask IoUs are C
in both). ``backend='pycocotools'`` selects the reference instead; both
packages are runtime requirements.

Conventions (those of the COCO toolkit):

* boxes come in as ``x1, y1, x2, y2`` pixels of the original image and are
  written as ``x, y, w, h`` with ``w = x2 - x1``;
* masks are compressed RLE dicts ``{'size': [h, w], 'counts': str}``;
* a ground-truth object's ``area`` (which sets small / medium / large) is its
  mask area when the dataset has masks, else its box area;
* crowd objects (``iscrowd``) are neither matched nor missed: a prediction
  on one is ignored;
* values are fractions in ``[0, 1]``; a value without ground truth to
  define it (e.g. ``mAP_s`` with no small objects) is ``nan``.
"""
import contextlib
import io
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Evaluators :func:`coco_evaluate` can use, the default first.
COCO_BACKENDS = ('faster_coco_eval', 'pycocotools')
DEFAULT_BACKEND = COCO_BACKENDS[0]
#: Kinds of evaluation: boxes and instance masks.
IOU_TYPES = ('bbox', 'segm')
#: Summary values of :func:`coco_evaluate` (each prefixed with the IoU
#: type, e.g. ``bbox_mAP_50``) besides ``AR@<max_dets>``.
AP_NAMES = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


def _check_backend(backend: str) -> str:
    if backend not in COCO_BACKENDS:
        raise ValueError(f'COCO evaluator {backend!r}; choose from '
                         f'{COCO_BACKENDS}.')
    return backend


def _mask_api(backend: str = DEFAULT_BACKEND):
    if _check_backend(backend) == 'faster_coco_eval':
        from faster_coco_eval.core import mask
        return mask
    from pycocotools import mask
    return mask


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):  # torch tensor, any device
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def encode_mask_rle(masks, backend: str = DEFAULT_BACKEND) -> List[dict]:
    """Compress binary masks to COCO RLE.

    Args:
        masks (ndarray | Tensor): ``(K, H, W)`` masks (bool or 0/1); a single
            ``(H, W)`` mask is treated as ``K = 1``.
        backend (str): Whose RLE encoder to use (same output).

    Returns:
        list[dict]: ``K`` dicts ``{'size': [H, W], 'counts': str}`` (JSON
        ready).
    """
    masks = _to_numpy(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f'Masks must be (K, H, W), got shape {masks.shape}.')
    if masks.shape[0] == 0:
        return []
    if masks.dtype == bool:
        masks = masks.view(np.uint8)
    # the encoder reads (H, W, K) in Fortran order: one copy of the masks
    fortran = np.asfortranarray(masks.transpose(1, 2, 0), dtype=np.uint8)
    rles = _mask_api(backend).encode(fortran)
    for rle in rles:
        if isinstance(rle['counts'], bytes):
            rle['counts'] = rle['counts'].decode('ascii')
        rle['size'] = [int(s) for s in rle['size']]
    return rles


def rle_area(rles: Sequence[dict],
             backend: str = DEFAULT_BACKEND) -> np.ndarray:
    """Pixel counts of RLE masks, float64 ``(K,)``."""
    if not rles:
        return np.zeros(0, np.float64)
    return np.asarray(_mask_api(backend).area(list(rles)), np.float64)


def xyxy_to_xywh(bboxes) -> np.ndarray:
    """``(K, 4)`` corner boxes to COCO ``x, y, w, h`` (float64)."""
    bboxes = _to_numpy(bboxes).astype(np.float64).reshape(-1, 4)
    out = bboxes.copy()
    out[:, 2:] = bboxes[:, 2:] - bboxes[:, :2]
    return out


def category_ids(num_classes: int,
                 cat_ids: Optional[Sequence[int]] = None) -> List[int]:
    """COCO category id of each contiguous label (``0..C-1`` if not given).

    Raises:
        ValueError: ``cat_ids`` has not one id per class.
    """
    if cat_ids is None:
        return list(range(num_classes))
    cat_ids = [int(c) for c in cat_ids]
    if len(cat_ids) != num_classes:
        raise ValueError(f'{len(cat_ids)} category ids for {num_classes} '
                         'classes; the dataset metainfo `cat_ids` must list '
                         'one COCO id per class, in label order.')
    return cat_ids


def build_coco_gt(images: Sequence[dict],
                  classes: Sequence[str],
                  cat_ids: Optional[Sequence[int]] = None,
                  backend: str = DEFAULT_BACKEND) -> dict:
    """A COCO ground-truth dataset dict from per-image original annotations.

    Args:
        images (Sequence[dict]): Per image: ``img_id`` (int), ``height``,
            ``width`` (original size) and ``ori_gt``: ``bboxes`` ``(M, 4)``
            xyxy original pixels, ``labels`` ``(M,)`` contiguous class
            indices, ``iscrowd`` ``(M,)`` bool (optional, all False) and
            ``masks`` (``M`` RLE dicts, or None without masks).
        classes (Sequence[str]): Class names in label order.
        cat_ids (Sequence[int], optional): COCO category id per label.
        backend (str): RLE helper used for mask areas.

    Returns:
        dict: ``images``, ``annotations`` (ids from 1; ``segmentation`` only
        where masks are given) and ``categories``.
    """
    ids = category_ids(len(classes), cat_ids)
    coco_images, annotations = [], []
    for image in images:
        img_id = int(image['img_id'])
        coco_images.append(
            dict(id=img_id,
                 height=int(image['height']),
                 width=int(image['width'])))
        gt = image.get('ori_gt') or {}
        boxes = xyxy_to_xywh(gt.get('bboxes', np.zeros((0, 4))))
        labels = _to_numpy(gt.get('labels',
                                  np.zeros(0))).astype(np.int64).reshape(-1)
        crowd = gt.get('iscrowd')
        crowd = (np.zeros(len(labels), bool) if crowd is None else
                 _to_numpy(crowd).astype(bool).reshape(-1))
        masks = gt.get('masks')
        if not len(boxes) == len(labels) == len(crowd) or (
                masks is not None and len(masks) != len(labels)):
            raise ValueError(
                f'Image {img_id}: ori_gt has {len(boxes)} boxes, '
                f'{len(labels)} labels, {len(crowd)} crowd flags and '
                f'{"no" if masks is None else len(masks)} masks; they must '
                'match.')
        if len(labels) and (labels.min() < 0 or labels.max() >= len(ids)):
            raise ValueError(f'Image {img_id}: ori_gt label '
                             f'{int(labels.max())} outside 0..{len(ids) - 1}'
                             f' ({len(ids)} classes).')
        areas = (rle_area(masks, backend)
                 if masks is not None else boxes[:, 2] * boxes[:, 3])
        for i in range(len(labels)):
            ann = dict(id=len(annotations) + 1,
                       image_id=img_id,
                       category_id=ids[labels[i]],
                       bbox=[float(v) for v in boxes[i]],
                       area=float(areas[i]),
                       iscrowd=int(crowd[i]))
            if masks is not None:
                ann['segmentation'] = masks[i]
            annotations.append(ann)
    categories = [dict(id=c, name=str(n)) for c, n in zip(ids, classes)]
    return dict(images=coco_images,
                annotations=annotations,
                categories=categories)


def predictions_to_coco(predictions: Sequence[dict],
                        iou_type: str = 'bbox',
                        cat_ids: Optional[Sequence[int]] = None) -> List[dict]:
    """COCO result entries of per-image predictions.

    Args:
        predictions (Sequence[dict]): Per image: ``img_id``, ``bboxes``
            ``(K, 4)`` xyxy original pixels, ``scores`` ``(K,)``, ``labels``
            ``(K,)`` and, for ``'segm'``, ``masks`` (``K`` RLE dicts).
        iou_type (str): ``'bbox'`` or ``'segm'`` (entries also carry
            ``segmentation``).
        cat_ids (Sequence[int], optional): COCO category id per label;
            labels are used as ids when None.

    Returns:
        list[dict]: ``image_id``, ``category_id``, ``bbox`` (xywh),
        ``score`` and, for masks, ``segmentation``: the format of a COCO
        results JSON file.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type {iou_type!r}; choose from {IOU_TYPES}.')
    results = []
    for pred in predictions:
        img_id = int(pred['img_id'])
        boxes = xyxy_to_xywh(pred['bboxes'])
        scores = _to_numpy(pred['scores']).astype(np.float64).reshape(-1)
        labels = _to_numpy(pred['labels']).astype(np.int64).reshape(-1)
        masks = pred.get('masks')
        if iou_type == 'segm' and masks is None:
            raise ValueError(f'Image {img_id}: segm evaluation needs '
                             'predicted masks; the model gave none.')
        for i in range(len(scores)):
            label = int(labels[i])
            if cat_ids is not None:
                if not 0 <= label < len(cat_ids):
                    raise ValueError(
                        f'Image {img_id}: predicted label {label} outside '
                        f'0..{len(cat_ids) - 1}.')
                label = int(cat_ids[label])
            entry = dict(image_id=img_id,
                         category_id=label,
                         bbox=[round(float(v), 3) for v in boxes[i]],
                         score=round(float(scores[i]), 5))
            if iou_type == 'segm':
                entry['segmentation'] = masks[i]
            results.append(entry)
    return results


def _coco_from_dict(dataset: dict, backend: str):
    """A COCO API object over ``dataset`` (not copied)."""
    if backend == 'faster_coco_eval':
        from faster_coco_eval import COCO
        return COCO(dataset)
    from pycocotools.coco import COCO
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _results_dataset(gt: dict, results: Sequence[dict], iou_type: str,
                     backend: str) -> dict:
    """Results as a COCO dataset (what ``loadRes`` does; empty allowed)."""
    anns = []
    if iou_type == 'segm' and results:
        areas = rle_area([r['segmentation'] for r in results], backend)
    for i, res in enumerate(results):
        ann = dict(res, id=i + 1, iscrowd=0)
        if iou_type == 'segm':
            ann['area'] = float(areas[i])
        else:
            ann['area'] = float(res['bbox'][2] * res['bbox'][3])
        anns.append(ann)
    return dict(images=gt['images'],
                categories=gt['categories'],
                annotations=anns)


def _mean_valid(values: np.ndarray) -> float:
    """Mean of the entries COCO marks as defined (``> -1``), else nan."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else float('nan')


def coco_evaluate(gt: dict,
                  results: Sequence[dict],
                  iou_type: str = 'bbox',
                  max_dets: int = 100,
                  backend: str = DEFAULT_BACKEND) -> dict:
    """Run the COCO evaluation of one IoU type.

    Args:
        gt (dict): Ground truth from :func:`build_coco_gt`.
        results (Sequence[dict]): Entries from :func:`predictions_to_coco`
            (may be empty: every AP with ground truth is then 0).
        iou_type (str): ``'bbox'`` or ``'segm'``.
        max_dets (int): Detections per image and class that count (COCO's
            largest ``maxDets``). Defaults to 100.
        backend (str): ``'faster_coco_eval'`` (default) or ``'pycocotools'``.

    Returns:
        dict: ``metrics`` (``{iou_type}_mAP``, ``_mAP_50``, ``_mAP_75``,
        ``_mAP_s``, ``_mAP_m``, ``_mAP_l``, ``_AR@{max_dets}``; fractions),
        ``per_class`` (list of dicts ``category_id``, ``name``, ``AP``,
        ``AP50``, ``AP75``; nan for a class without ground truth),
        ``precision`` (COCO's ``(T, R, K, A, M)`` array: IoU thresholds,
        recall thresholds, classes, areas all/small/medium/large, maxDets;
        -1 where undefined), ``iou_thrs`` ``(T,)``, ``rec_thrs`` ``(R,)``
        and ``cat_ids`` ``(K,)``.
    """
    backend = _check_backend(backend)
    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type {iou_type!r}; choose from {IOU_TYPES}.')
    if iou_type == 'segm' and any('segmentation' not in a
                                  for a in gt['annotations']):
        raise ValueError('segm evaluation needs ground-truth masks; this '
                         "dataset's ori_gt has none (use metric='bbox').")
    coco_gt = _coco_from_dict(gt, backend)
    coco_dt = _coco_from_dict(_results_dataset(gt, results, iou_type, backend),
                              backend)
    if backend == 'faster_coco_eval':
        from faster_coco_eval import COCOeval_faster
        evaluator = COCOeval_faster(coco_gt,
                                    coco_dt,
                                    iou_type,
                                    print_function=lambda *a, **k: None)
    else:
        from pycocotools.cocoeval import COCOeval
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
    params = evaluator.params
    params.imgIds = sorted(img['id'] for img in gt['images'])
    params.catIds = [c['id'] for c in gt['categories']]
    params.maxDets = sorted({1, 10, int(max_dets)})
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    precision = np.asarray(evaluator.eval['precision'], np.float64)
    recall = np.asarray(evaluator.eval['recall'], np.float64)
    iou_thrs = np.asarray(params.iouThrs, np.float64)
    t50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
    t75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
    m = len(params.maxDets) - 1
    metrics = {
        'mAP': _mean_valid(precision[:, :, :, 0, m]),
        'mAP_50': _mean_valid(precision[t50, :, :, 0, m]),
        'mAP_75': _mean_valid(precision[t75, :, :, 0, m]),
        'mAP_s': _mean_valid(precision[:, :, :, 1, m]),
        'mAP_m': _mean_valid(precision[:, :, :, 2, m]),
        'mAP_l': _mean_valid(precision[:, :, :, 3, m]),
        f'AR@{params.maxDets[m]}': _mean_valid(recall[:, :, 0, m]),
    }
    names = {c['id']: c['name'] for c in gt['categories']}
    per_class = [
        dict(category_id=cat,
             name=names[cat],
             AP=_mean_valid(precision[:, :, k, 0, m]),
             AP50=_mean_valid(precision[t50, :, k, 0, m]),
             AP75=_mean_valid(precision[t75, :, k, 0, m]))
        for k, cat in enumerate(params.catIds)
    ]
    return dict(metrics={
        f'{iou_type}_{k}': v
        for k, v in metrics.items()
    },
                per_class=per_class,
                precision=precision,
                iou_thrs=iou_thrs,
                rec_thrs=np.asarray(params.recThrs, np.float64),
                cat_ids=np.asarray(params.catIds))


def evaluate_detections(
    images: Sequence[dict],
    predictions: Sequence[dict],
    classes: Sequence[str],
    cat_ids: Optional[Sequence[int]] = None,
    iou_types: Sequence[str] = ('bbox', ),
    max_dets: int = 100,
    backend: str = DEFAULT_BACKEND
) -> Tuple[Dict[str, float], Dict[str, dict]]:
    """COCO mAP of boxes and/or masks in one call.

    Args:
        images (Sequence[dict]): Ground truth per image, as
            :func:`build_coco_gt` takes it.
        predictions (Sequence[dict]): Predictions per image, as
            :func:`predictions_to_coco` takes them.
        classes (Sequence[str]): Class names in label order.
        cat_ids (Sequence[int], optional): COCO category id per label.
        iou_types (Sequence[str]): Any of ``'bbox'``, ``'segm'``.
        max_dets (int): See :func:`coco_evaluate`.
        backend (str): See :func:`coco_evaluate`.

    Returns:
        tuple: The flat metrics dict of all IoU types and the full
        :func:`coco_evaluate` output per IoU type.
    """
    ids = category_ids(len(classes), cat_ids)
    gt = build_coco_gt(images, classes, ids, backend)
    metrics, details = {}, {}
    for iou_type in iou_types:
        details[iou_type] = coco_evaluate(
            gt, predictions_to_coco(predictions, iou_type, ids), iou_type,
            max_dets, backend)
        metrics.update(details[iou_type]['metrics'])
    return metrics, details
