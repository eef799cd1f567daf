"""COCO evaluation: pycocotools vs faster-coco-eval speed, CocoMetric memory.

The data are synthetic: per image ``instances`` rectangular objects of
random size (small, medium and large) and class; the predictions are the
objects with jittered boxes and shifted masks, plus as many false positives,
with random scores. Only the speed and memory of the evaluation matter here,
not the values.
"""
import multiprocessing as mp
import time
from typing import Dict, List, Tuple

import numpy as np

from dinov3_mm.evaluation.functional.detection import (COCO_BACKENDS,
                                                       build_coco_gt,
                                                       coco_evaluate,
                                                       encode_mask_rle,
                                                       predictions_to_coco)
from .common import (best_of_alternating, read_status_mib, reset_peak_rss_mib,
                     rows_to_markdown)

CLASSES = tuple(f'class_{i}' for i in range(10))


def _boxes(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    side = np.exp(rng.uniform(np.log(8), np.log(size / 3), (n, 2)))
    x1 = rng.uniform(0, size - side[:, 0])
    y1 = rng.uniform(0, size - side[:, 1])
    return np.stack([x1, y1, x1 + side[:, 0], y1 + side[:, 1]],
                    1).astype(np.float32)


def _masks(boxes: np.ndarray, size: int) -> np.ndarray:
    masks = np.zeros((len(boxes), size, size), bool)
    for m, (x1, y1, x2, y2) in zip(masks, boxes.round().astype(int)):
        m[max(y1, 0):min(y2, size), max(x1, 0):min(x2, size)] = True
    return masks


def synthetic_image(seed: int,
                    instances: int = 50,
                    size: int = 640) -> Tuple[dict, dict]:
    """One image's ``ori_gt`` and predictions with full-size masks.

    Returns:
        tuple: ``(ori_gt, pred)``; ``ori_gt`` holds RLE masks (as a dataset
        gives them), ``pred`` ``bboxes``, ``scores``, ``labels`` and bool
        ``masks`` ``(2 * instances, size, size)`` (as a model gives them).
    """
    rng = np.random.default_rng(seed)
    gt_boxes = _boxes(rng, instances, size)
    labels = rng.integers(0, len(CLASSES), instances)
    ori_gt = dict(bboxes=gt_boxes,
                  labels=labels,
                  iscrowd=np.zeros(instances, bool),
                  masks=encode_mask_rle(_masks(gt_boxes, size)))
    jitter = rng.normal(0, 3, gt_boxes.shape).astype(np.float32)
    pred_boxes = np.concatenate(
        [np.clip(gt_boxes + jitter, 0, size),
         _boxes(rng, instances, size)])
    pred_labels = np.concatenate(
        [labels, rng.integers(0, len(CLASSES), instances)])
    pred = dict(bboxes=pred_boxes,
                labels=pred_labels,
                scores=rng.uniform(0, 1, 2 * instances).astype(np.float32),
                masks=_masks(pred_boxes, size))
    return ori_gt, pred


def synthetic_dataset(images: int, instances: int,
                      size: int) -> Tuple[List[dict], List[dict]]:
    """Ground truth and compact (RLE) predictions of ``images`` images."""
    gts, preds = [], []
    for i in range(images):
        ori_gt, pred = synthetic_image(i, instances, size)
        gts.append(dict(img_id=i + 1, height=size, width=size, ori_gt=ori_gt))
        pred['masks'] = encode_mask_rle(pred['masks'])
        preds.append(dict(pred, img_id=i + 1))
    return gts, preds


def benchmark_evaluators(images: int = 200,
                         instances: int = 50,
                         size: int = 640,
                         rounds: int = 3) -> List[Dict[str, object]]:
    """Seconds of one COCO evaluation per backend and IoU type.

    Both backends evaluate the same ground truth and results, alternately
    (best of ``rounds``); the time covers building the COCO objects,
    matching and accumulating. Also checks that both give the same mAP.

    Returns:
        list[dict]: One row per IoU type.
    """
    gts, preds = synthetic_dataset(images, instances, size)
    rows = []
    for iou_type in ('bbox', 'segm'):
        results = predictions_to_coco(preds, iou_type,
                                      list(range(len(CLASSES))))
        values = {}

        def timer(backend):

            def run() -> float:
                gt = build_coco_gt(gts, CLASSES, backend=backend)
                start = time.perf_counter()
                out = coco_evaluate(gt, results, iou_type, 100, backend)
                elapsed = time.perf_counter() - start
                values[backend] = out['metrics'][f'{iou_type}_mAP']
                return elapsed

            return run

        best = best_of_alternating({b: timer(b)
                                    for b in COCO_BACKENDS}, rounds)
        rows.append(
            dict(iou_type=iou_type,
                 images=images,
                 instances=instances,
                 size=size,
                 detections=len(results),
                 pycocotools_s=round(best['pycocotools'], 3),
                 faster_coco_eval_s=round(best['faster_coco_eval'], 3),
                 speedup=round(best['pycocotools'] / best['faster_coco_eval'],
                               2),
                 mAP_pycocotools=round(values['pycocotools'], 4),
                 mAP_faster_coco_eval=round(values['faster_coco_eval'], 4)))
    return rows


def _memory_worker(images: int, instances: int, size: int, segm: bool,
                   queue) -> None:
    """Child process: RSS growth of CocoMetric over ``images`` images."""
    import torch
    from mmengine.structures import InstanceData

    from dinov3_mm.evaluation.metrics import CocoMetric
    from dinov3_mm.structures import DetDataSample
    metric = CocoMetric(metric=('bbox', 'segm') if segm else ('bbox', ),
                        classwise=False)
    metric.dataset_meta = dict(classes=CLASSES,
                               cat_ids=list(range(1,
                                                  len(CLASSES) + 1)))
    base = reset_peak_rss_mib()
    start = time.perf_counter()
    for i in range(images):
        ori_gt, pred = synthetic_image(i, instances, size)
        sample = DetDataSample(
            metainfo=dict(img_id=i + 1, ori_shape=(size, size), ori_gt=ori_gt))
        sample.pred_instances = InstanceData(
            bboxes=torch.from_numpy(pred['bboxes']),
            scores=torch.from_numpy(pred['scores']),
            labels=torch.from_numpy(pred['labels']),
            masks=torch.from_numpy(pred['masks']))
        del pred
        metric.process({}, [sample])
        del sample
    process_s = time.perf_counter() - start
    after_process = read_status_mib('VmRSS') - base
    peak_process = read_status_mib('VmHWM') - base
    start = time.perf_counter()
    values = metric.evaluate(images)
    queue.put(
        dict(process_s=round(process_s, 1),
             evaluate_s=round(time.perf_counter() - start, 1),
             rss_after_process_mib=round(after_process, 1),
             peak_process_mib=round(peak_process, 1),
             peak_total_mib=round(read_status_mib('VmHWM') - base, 1),
             values={
                 k: round(v, 4)
                 for k, v in values.items()
             }))


def metric_memory(images: int = 200,
                  instances: int = 50,
                  size: int = 640,
                  segm: bool = True) -> Dict[str, object]:
    """Peak RSS growth of ``CocoMetric.process`` + ``evaluate``.

    Runs in a fresh process; the growth is measured from just before the
    first image (Linux ``VmHWM`` after resetting it). Each image's
    predictions arrive as a ``DetDataSample`` with full-size bool masks
    ``(2 * instances, size, size)``, the ground truth as RLE.

    Returns:
        dict: Seconds of processing and evaluating, RSS growth after
        processing, peak growth while processing and overall (MiB), and
        the metric values.
    """
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_worker,
                       args=(images, instances, size, segm, queue))
    proc.start()
    row = queue.get(timeout=3600)
    proc.join()
    row.update(images=images,
               instances=instances,
               size=size,
               metric='bbox+segm' if segm else 'bbox',
               mask_bytes_if_kept_mib=round(
                   images * 2 * instances * size * size / 2**20, 1))
    return row


SPEED_COLS = [
    'iou_type', 'images', 'instances', 'size', 'detections', 'pycocotools_s',
    'faster_coco_eval_s', 'speedup', 'mAP_pycocotools', 'mAP_faster_coco_eval'
]
MEMORY_COLS = [
    'metric', 'images', 'instances', 'size', 'process_s', 'evaluate_s',
    'rss_after_process_mib', 'peak_process_mib', 'peak_total_mib',
    'mask_bytes_if_kept_mib'
]


def speed_markdown(rows: List[Dict[str, object]]) -> str:
    """Markdown table of :func:`benchmark_evaluators` rows."""
    return rows_to_markdown(rows, SPEED_COLS)


def memory_markdown(rows: List[Dict[str, object]]) -> str:
    """Markdown table of :func:`metric_memory` rows."""
    return rows_to_markdown(rows, MEMORY_COLS)
