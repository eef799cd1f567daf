"""SegMetric against hand-computed IoU / Dice / pixel accuracy."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from dinov3_mm.evaluation.metrics.segmentation import SegMetric
from dinov3_mm.registry import METRICS


def _sample(pred, gt):
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
    s.gt_sem_seg = PixelData(data=torch.as_tensor(gt)[None])
    return s.to_dict()


GT = [[0, 0, 1], [1, 2, 255]]
PRED = [[0, 1, 1], [1, 2, 0]]
# labelled pixels (255 left out): gt 0 0 1 1 2, pred 0 1 1 1 2
# class 0: TP 1, FP 0, FN 1 -> IoU 1/2, Dice 2/3
# class 1: TP 2, FP 1, FN 0 -> IoU 2/3, Dice 4/5
# class 2: TP 1 -> IoU 1, Dice 1; aAcc 4/5


def test_hand_computed():
    metric = SegMetric(classes=('a', 'b', 'c'))
    metric.process({}, [_sample(PRED, GT)])
    res = metric.evaluate(1)
    assert res['aAcc'] == pytest.approx(80.0)
    assert res['mIoU'] == pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 3)
    assert res['mDice'] == pytest.approx(100 * (2 / 3 + 4 / 5 + 1) / 3)
    rows = metric.last_per_class
    assert [r['cls'] for r in rows] == ['a', 'b', 'c']
    assert rows[0]['IoU'] == pytest.approx(50.0)
    assert rows[1]['Dice'] == pytest.approx(80.0)
    assert [r['support'] for r in rows] == [2, 2, 1]


def test_accumulates_over_samples_and_absent_class():
    metric = METRICS.build(dict(type='SegMetric', iou_metrics=['mIoU']))
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    metric.process({}, [_sample(PRED, GT)])
    metric.process({}, [_sample([[0, 0]], [[0, 255]])])
    res = metric.evaluate(2)
    assert set(res) == {'aAcc', 'mIoU'}
    # class 0: TP 2, FP 0, FN 1; class d absent -> NaN, skipped
    assert res['aAcc'] == pytest.approx(100 * 5 / 6)
    assert res['mIoU'] == pytest.approx(100 * (2 / 3 + 2 / 3 + 1) / 3)
    assert math.isnan(metric.last_per_class[3]['IoU'])
    metric = SegMetric(classes=('a', 'b', 'c', 'd'), nan_to_num=0)
    metric.process({}, [_sample(PRED, GT)])
    res = metric.evaluate(1)
    assert res['mIoU'] == pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 4)


def test_errors():
    with pytest.raises(ValueError, match='iou_metrics'):
        SegMetric(iou_metrics=('mFscore', ))
    metric = SegMetric(num_classes=2)
    with pytest.raises(KeyError, match='pred_sem_seg'):
        metric.process({}, [dict(gt_sem_seg=dict(data=torch.zeros(1, 2, 2)))])


def test_matches_mmseg_iou_metric():
    from mmseg.evaluation import IoUMetric  # mmsegmentation is a dev dep
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(3):
        gt = rng.integers(0, 4, (16, 16))
        gt[rng.random((16, 16)) < 0.1] = 255
        pred = np.where(rng.random((16, 16)) < 0.7, gt, rng.integers(
            0, 4, (16, 16)))
        pred[pred == 255] = 0
        samples.append(_sample(pred, gt))
    ours = SegMetric(classes=tuple('abcd'))
    ref = IoUMetric(iou_metrics=['mIoU', 'mDice'])
    ref.dataset_meta = dict(classes=tuple('abcd'))
    ours.process({}, samples)
    ref.process({}, samples)
    a, b = ours.evaluate(3), ref.evaluate(3)
    for key in ('aAcc', 'mIoU', 'mDice'):
        assert a[key] == pytest.approx(b[key], abs=0.01)
