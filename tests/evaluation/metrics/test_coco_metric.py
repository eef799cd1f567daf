"""CocoMetric end to end: mmengine's Evaluator fed with DetDataSample objects."""
import json
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from dinov3_mm.evaluation import CocoMetric
from dinov3_mm.evaluation.functional.detection import encode_mask_rle
from dinov3_mm.registry import METRICS
from dinov3_mm.structures import DetDataSample

CLASSES = ('cat', 'dog')
META = dict(classes=CLASSES, cat_ids=[17, 18])
SIZE = (48, 64)


def _masks(boxes):
    masks = np.zeros((len(boxes), ) + SIZE, bool)
    for m, (x1, y1, x2, y2) in zip(masks, np.asarray(boxes, int)):
        m[y1:y2, x1:x2] = True
    return masks


def _sample(img_id,
            gt_boxes,
            gt_labels,
            boxes,
            labels,
            scores,
            pred_masks=None,
            with_masks=True,
            iscrowd=None):
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    ori_gt = dict(
        bboxes=gt_boxes,
        labels=np.asarray(gt_labels, np.int64),
        iscrowd=np.zeros(len(gt_boxes), bool)
        if iscrowd is None else np.asarray(iscrowd, bool),
        masks=encode_mask_rle(_masks(gt_boxes)) if with_masks else None)
    sample = DetDataSample(metainfo=dict(
        img_id=img_id, img_path=f'{img_id}.jpg', ori_shape=SIZE,
        ori_gt=ori_gt))
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    pred = InstanceData(bboxes=boxes,
                        labels=torch.tensor(labels).long(),
                        scores=torch.tensor(scores).float())
    if with_masks:
        pred.masks = torch.from_numpy(
            _masks(boxes.numpy()) if pred_masks is None else pred_masks)
    sample.pred_instances = pred
    # a packed-size gt_instances that the metric must not read
    sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                       labels=torch.zeros(0).long())
    return sample


def _perfect_samples():
    return [
        _sample(1, [[2, 2, 20, 30], [30, 5, 60, 40]], [0, 1],
                [[2, 2, 20, 30], [30, 5, 60, 40]], [0, 1], [0.9, 0.8]),
        _sample(2, [[10, 10, 40, 40]], [1], [[10, 10, 40, 40]], [1], [0.7]),
        _sample(3, [], [], [], [], []),  # negative image, no prediction
    ]


def _evaluate(metric, samples, batch=2, meta=META):
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = meta
    for i in range(0, len(samples), batch):
        evaluator.process(samples[i:i + batch])
    return evaluator.evaluate(len(samples))


def test_built_from_registry_and_bad_args():
    metric = METRICS.build(dict(type='CocoMetric', metric=['bbox', 'segm']))
    assert isinstance(metric, CocoMetric)
    assert metric.metrics == ('bbox', 'segm') and metric.max_dets == 100
    with pytest.raises(ValueError, match='proposal'):
        CocoMetric(metric='proposal')
    with pytest.raises(ValueError, match='backend'):
        CocoMetric(backend='lvis')


def test_perfect_predictions_give_one_for_boxes_and_masks(tmp_path):
    metric = CocoMetric(metric=('bbox', 'segm'),
                        pr_curve_dir=str(tmp_path / 'pr'))
    values = _evaluate(metric, _perfect_samples())
    for iou_type in ('bbox', 'segm'):
        for key in ('mAP', 'mAP_50', 'mAP_75', 'AR@100'):
            assert values[f'{iou_type}_{key}'] == pytest.approx(1.0)
    assert set(values) == {
        f'{t}_{k}'
        for t in ('bbox', 'segm')
        for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
                  'AR@100')
    }
    rows = metric.last_per_class['segm']
    assert [(r['name'], r['category_id']) for r in rows] == [('cat', 17),
                                                             ('dog', 18)]
    for iou_type in ('bbox', 'segm'):
        png = tmp_path / 'pr' / f'pr_curve_{iou_type}.png'
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        assert png.stat().st_size > 5000


def test_records_are_compact_rle():
    metric = CocoMetric(metric=('bbox', 'segm'))
    metric.dataset_meta = META
    metric.process({}, [s.to_dict() for s in _perfect_samples()])
    record = metric.results[0]
    assert isinstance(record['masks'][0]['counts'], str)
    assert record['masks'][0]['size'] == list(SIZE)
    arrays = [v for v in record.values() if isinstance(v, np.ndarray)]
    assert all(a.nbytes <= 64 for a in arrays)  # no (K, H, W) array kept


def test_partial_case_missed_object_and_wrong_class():
    samples = [
        # cat found, dog missed
        _sample(1, [[2, 2, 20, 30], [30, 5, 60, 40]], [0, 1], [[2, 2, 20, 30]],
                [0], [0.9],
                with_masks=False),
        # dog predicted as cat (a false positive of class cat)
        _sample(2, [[10, 10, 40, 40]], [1], [[10, 10, 40, 40]], [0], [0.95],
                with_masks=False),
    ]
    metric = CocoMetric(metric='bbox')
    values = _evaluate(metric, samples)
    # cat: FP (0.95) ranked above the TP (0.9): precision 0.5 -> AP 0.5;
    # dog: nothing found -> AP 0
    per_class = [r['AP'] for r in metric.last_per_class['bbox']]
    assert per_class == pytest.approx([0.5, 0.0])
    assert values['bbox_mAP'] == pytest.approx(0.25)
    assert math.isnan(values['bbox_mAP_l'])  # no object over 96x96 px


def test_classwise_table_logged(monkeypatch):
    logged = []
    monkeypatch.setattr('dinov3_mm.evaluation.metrics.coco_metric.print_log',
                        lambda msg, **kw: logged.append(msg))
    _evaluate(CocoMetric(metric='bbox'), _perfect_samples())
    table = next(m for m in logged if m.startswith('Per-class bbox AP'))
    assert '| class | AP | AP50 | AP75 |' in table
    assert '| cat | 1.000 | 1.000 | 1.000 |' in table
    logged.clear()
    _evaluate(CocoMetric(metric='bbox', classwise=False), _perfect_samples())
    assert not any(m.startswith('Per-class') for m in logged)


def test_coco_json_output_loads_with_dataset_category_ids(tmp_path):
    prefix = tmp_path / 'out' / 'preds'
    _evaluate(CocoMetric(metric=('bbox', 'segm'), outfile_prefix=str(prefix)),
              _perfect_samples())
    bbox = json.loads((tmp_path / 'out' / 'preds.bbox.json').read_text())
    segm = json.loads((tmp_path / 'out' / 'preds.segm.json').read_text())
    assert len(bbox) == len(segm) == 3
    first = bbox[0]
    assert first['image_id'] == 1 and first['category_id'] == 17
    assert first['bbox'] == [2.0, 2.0, 18.0, 28.0]
    assert first['score'] == pytest.approx(0.9)
    assert {r['category_id'] for r in segm} == {17, 18}
    assert segm[0]['segmentation']['size'] == list(SIZE)
    # the file is a valid COCO result file for the COCO API
    from pycocotools import mask as mask_utils
    rle = dict(segm[0]['segmentation'])
    rle['counts'] = rle['counts'].encode()
    assert mask_utils.area(rle) == 18 * 28


def test_segm_needs_masks_and_ori_gt_is_required():
    sample = _sample(1, [[0, 0, 5, 5]], [0], [[0, 0, 5, 5]], [0], [0.5],
                     with_masks=False)
    with pytest.raises(KeyError, match='predicted masks'):
        CocoMetric(metric='segm').process({}, [sample])
    sample = DetDataSample(metainfo=dict(img_id=4, ori_shape=SIZE))
    sample.pred_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                         scores=torch.zeros(0),
                                         labels=torch.zeros(0).long())
    with pytest.raises(KeyError, match='ori_gt'):
        CocoMetric().process({}, [sample])
