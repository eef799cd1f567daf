"""COCO detection metric class: box and mask mAP, :class:`CocoMetric`.

The values come from :mod:`dinov3_mm.evaluation.functional.detection`
(conventions and the evaluator choice are explained there). Values are
**fractions in [0, 1]**, as in mmdet, under ``{iou_type}_mAP``,
``{iou_type}_mAP_50``, ``_mAP_75``, ``_mAP_s``, ``_mAP_m``, ``_mAP_l`` and
``{iou_type}_AR@{max_dets}`` for ``iou_type`` in ``bbox`` / ``segm``.
"""
import json
import logging
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from dinov3_mm.registry import METRICS, VISUALIZERS
from ..functional.detection import (COCO_BACKENDS, DEFAULT_BACKEND, IOU_TYPES,
                                    build_coco_gt, category_ids, coco_evaluate,
                                    encode_mask_rle, predictions_to_coco)

#: Name under which :mod:`dinov3_mm.visualization.det_plots` registers its
#: PR-curve drawer in ``VISUALIZERS`` (found through the registry because
#: evaluation sits below visualization in the import layers).
PR_PLOTTER = 'plot_det_pr_curves'


def _numpy(value, dtype) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _get(container, key, default=None):
    """``container[key]`` of a dict or an attribute of a data element."""
    if isinstance(container, dict):
        return container.get(key, default)
    return getattr(container, key, default)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; floats with three decimals, nan as ``-``."""

    def cell(value) -> str:
        if isinstance(value, float):
            return '-' if math.isnan(value) else f'{value:.3f}'
        return str(value)

    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO mAP of boxes and instance masks.

    ``process`` keeps one compact record per image: predicted boxes, scores
    and labels, predicted masks already compressed to RLE, and the original
    annotations of ``metainfo['ori_gt']`` (boxes in original pixels, crowd
    flags, RLE masks), so memory does not grow with image size and the
    packed-size ``gt_instances`` are never used. Images without predictions
    or without objects are evaluated like any other.

    After each evaluation the per-class rows stay in :attr:`last_per_class`
    and the full evaluator outputs (precision arrays for PR curves) in
    :attr:`last_details`, keyed by IoU type.

    Args:
        metric (str | Sequence[str]): ``'bbox'`` and/or ``'segm'``.
            Defaults to ``('bbox', )``.
        classwise (bool): Log a markdown table of per-class AP, AP50 and
            AP75. Defaults to True.
        outfile_prefix (str, optional): Write the predictions as COCO result
            files ``<prefix>.bbox.json`` / ``<prefix>.segm.json`` (category
            ids from ``dataset_meta['cat_ids']``).
        pr_curve_dir (str, optional): Write ``pr_curve_<iou_type>.png``
            there.
        max_dets (int): Detections per image and class that count.
            Defaults to 100.
        backend (str): COCO evaluator, ``'faster_coco_eval'`` (default) or
            ``'pycocotools'``.
        classes (Sequence[str], optional): Class names; defaults to
            ``dataset_meta['classes']``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names.
    """

    default_prefix: Optional[str] = ''

    def __init__(self,
                 metric: Union[str, Sequence[str]] = ('bbox', ),
                 classwise: bool = True,
                 outfile_prefix: Optional[str] = None,
                 pr_curve_dir: Optional[str] = None,
                 max_dets: int = 100,
                 backend: str = DEFAULT_BACKEND,
                 classes: Optional[Sequence[str]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        metrics = (metric, ) if isinstance(metric, str) else tuple(metric)
        for name in metrics:
            if name not in IOU_TYPES:
                raise ValueError(f'CocoMetric: metric {name!r}; choose from '
                                 f'{IOU_TYPES}.')
        if not metrics:
            raise ValueError('CocoMetric: metric is empty.')
        if backend not in COCO_BACKENDS:
            raise ValueError(f'CocoMetric: backend {backend!r}; choose from '
                             f'{COCO_BACKENDS}.')
        if int(max_dets) < 1:
            raise ValueError(f'CocoMetric: max_dets={max_dets} must be >= 1.')
        self.metrics = metrics
        self.classwise = classwise
        self.outfile_prefix = outfile_prefix
        self.pr_curve_dir = pr_curve_dir
        self.max_dets = int(max_dets)
        self.backend = backend
        self.classes = list(classes) if classes is not None else None
        self.last_per_class: Optional[Dict[str, List[dict]]] = None
        self.last_details: Optional[Dict[str, dict]] = None

    # ----------------------------------------------------------- collecting
    def process(self, data_batch, data_samples: Sequence) -> None:
        """Keep a compact record of each image (masks as RLE)."""
        for sample in data_samples:
            self.results.append(self._compact(sample))

    def _compact(self, sample) -> dict:
        meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
        name = meta.get('img_path', meta.get('img_id', 'a sample'))
        if 'img_id' not in meta:
            raise KeyError(f'CocoMetric: {name} has no `img_id` in its '
                           'metainfo; PackDetInputs must pack it.')
        if 'ori_gt' not in meta:
            raise KeyError(
                f'CocoMetric: {name} has no `ori_gt` in its metainfo; the '
                'test pipeline must load the annotations (LoadDetAnnotations)'
                ' and PackDetInputs must pack ori_gt.')
        pred = _get(sample, 'pred_instances')
        if pred is None:
            raise KeyError(f'CocoMetric: {name} has no `pred_instances`; '
                           "make the detector's predict() fill it.")
        bboxes = _numpy(_get(pred, 'bboxes'), np.float32).reshape(-1, 4)
        masks = _get(pred, 'masks')
        if 'segm' in self.metrics and masks is None:
            raise KeyError(f"CocoMetric: metric='segm' but {name} has no "
                           'predicted masks (pred_instances.masks).')
        record = dict(img_id=int(meta['img_id']),
                      height=int(meta['ori_shape'][0]),
                      width=int(meta['ori_shape'][1]),
                      bboxes=bboxes,
                      scores=_numpy(_get(pred, 'scores'),
                                    np.float32).reshape(-1),
                      labels=_numpy(_get(pred, 'labels'),
                                    np.int64).reshape(-1),
                      masks=(encode_mask_rle(masks, self.backend)
                             if masks is not None else None))
        gt = meta['ori_gt']
        gt_masks = gt.get('masks')
        record['ori_gt'] = dict(
            bboxes=np.array(gt['bboxes'], np.float32).reshape(-1, 4),
            labels=np.array(gt['labels'], np.int64).reshape(-1),
            iscrowd=(np.array(gt['iscrowd'], bool).reshape(-1)
                     if gt.get('iscrowd') is not None else None),
            masks=list(gt_masks) if gt_masks is not None else None)
        return record

    # ----------------------------------------------------------- computing
    def _class_names(self, results: List[dict]) -> List[str]:
        names = self.classes
        if names is None and self.dataset_meta:
            names = self.dataset_meta.get('classes')
        if names is None:
            top = max(
                [int(r['labels'].max())
                 for r in results if r['labels'].size] + [
                     int(r['ori_gt']['labels'].max())
                     for r in results if r['ori_gt']['labels'].size
                 ] + [-1])
            names = [f'class_{i}' for i in range(top + 1)]
        return [str(n) for n in names]

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """COCO evaluation of the gathered records, per IoU type."""
        if not results:
            print_log('CocoMetric: no results to evaluate.',
                      logger='current',
                      level=logging.WARNING)
            return {}
        unique = {}
        for r in results:
            unique.setdefault(r['img_id'], r)
        if len(unique) < len(results):
            print_log(
                f'CocoMetric: {len(results) - len(unique)} duplicate '
                'image ids; kept the first record of each.',
                logger='current',
                level=logging.WARNING)
        results = list(unique.values())
        classes = self._class_names(results)
        cat_ids = category_ids(len(classes), (self.dataset_meta
                                              or {}).get('cat_ids'))
        gt = build_coco_gt(results, classes, cat_ids, self.backend)
        metrics: Dict[str, float] = {}
        self.last_per_class, self.last_details = {}, {}
        for iou_type in self.metrics:
            coco_results = predictions_to_coco(results, iou_type, cat_ids)
            if self.outfile_prefix:
                self._dump(coco_results, iou_type)
            details = coco_evaluate(gt, coco_results, iou_type, self.max_dets,
                                    self.backend)
            metrics.update(details['metrics'])
            self.last_details[iou_type] = details
            self.last_per_class[iou_type] = details['per_class']
            if self.classwise:
                rows = [[c['name'], c['AP'], c['AP50'], c['AP75']]
                        for c in details['per_class']]
                print_log(
                    f'Per-class {iou_type} AP:\n' +
                    markdown_table(['class', 'AP', 'AP50', 'AP75'], rows),
                    logger='current')
            if self.pr_curve_dir:
                self._plot(details, classes, iou_type)
        return {k: float(v) for k, v in metrics.items()}

    def _dump(self, coco_results: List[dict], iou_type: str) -> None:
        path = f'{self.outfile_prefix}.{iou_type}.json'
        if osp.dirname(path):
            os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as fh:
            json.dump(coco_results, fh)
        print_log(
            f'CocoMetric: wrote {len(coco_results)} {iou_type} '
            f'predictions to {path}',
            logger='current')

    def _plot(self, details: dict, classes: List[str], iou_type: str) -> None:
        plot = VISUALIZERS.get(PR_PLOTTER)
        if plot is None:
            print_log(
                f'CocoMetric: no {PR_PLOTTER} in the VISUALIZERS '
                'registry; PR curves not drawn.',
                logger='current',
                level=logging.WARNING)
            return
        path = plot(details['precision'],
                    details['rec_thrs'],
                    details['iou_thrs'],
                    classes,
                    osp.join(self.pr_curve_dir, f'pr_curve_{iou_type}.png'),
                    title=f'{iou_type} precision-recall')
        print_log(f'CocoMetric: wrote {path}', logger='current')
