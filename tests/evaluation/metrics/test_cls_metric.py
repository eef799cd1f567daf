"""ClsMetric end to end: mmengine's Evaluator fed with DataSample objects."""
import csv
import math

import pytest
import torch
from mmengine.evaluator import Evaluator

from dinov3_mm.evaluation import ClsMetric
from dinov3_mm.registry import METRICS
from dinov3_mm.structures.data_sample import DataSample


def _samples(scores, labels):
    return [
        DataSample().set_pred_score(s).set_pred_label(int(s.argmax()))
        .set_gt_label(int(y)) for s, y in zip(scores, labels)
    ]


def _evaluate(metric, samples, batch=2, meta=None):
    evaluator = Evaluator(metric)
    if meta is not None:
        evaluator.dataset_meta = meta
    for i in range(0, len(samples), batch):
        evaluator.process(samples[i:i + batch])
    return evaluator.evaluate(len(samples))


def test_built_from_registry():
    metric = METRICS.build(dict(type='ClsMetric', topk=1, prefix='cls'))
    assert isinstance(metric, ClsMetric)
    assert metric.average == ('macro', 'weighted')
    with pytest.raises(ValueError, match='average'):
        ClsMetric(average=('mean', ))


def test_single_label_names_units_and_values():
    # preds (argmax) [0, 1, 1, 1, 2, 0] vs labels [0, 0, 1, 1, 2, 2]
    scores = torch.tensor([[.8, .1, .1], [.3, .6, .1], [.1, .8, .1],
                           [.2, .7, .1], [.1, .2, .7], [.5, .1, .4]])
    labels = [0, 0, 1, 1, 2, 2]
    metric = ClsMetric()
    out = _evaluate(metric, _samples(scores, labels),
                    meta=dict(classes=('cat', 'dog', 'fox')))
    assert set(out) == {
        'accuracy/top1', 'precision/macro', 'recall/macro', 'f1/macro',
        'precision/weighted', 'recall/weighted', 'f1/weighted', 'auroc/macro'
    }  # top5 needs more than 5 classes
    assert all(type(v) is float for v in out.values())
    assert out['accuracy/top1'] == pytest.approx(100 * 4 / 6)
    assert out['precision/macro'] == pytest.approx(100 * (.5 + 2 / 3 + 1) / 3)
    assert out['recall/macro'] == pytest.approx(100 * 2 / 3)
    assert out['f1/macro'] == pytest.approx(100 * (.5 + .8 + 2 / 3) / 3)
    assert 0 <= out['auroc/macro'] <= 100
    # raw results kept for plots
    res = metric.last_results
    assert res['scores'].shape == (6, 3)
    assert res['labels'].tolist() == labels
    assert res['classes'] == ['cat', 'dog', 'fox']
    assert [r['cls'] for r in metric.last_per_class] == ['cat', 'dog', 'fox']
    assert metric.last_per_class[1]['support'] == 2


def test_perfect_predictions_and_top5():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(8).repeat(3)
    scores = torch.rand(24, 8, generator=gen) * 0.1
    scores[torch.arange(24), labels] = 1.0
    scores = scores.softmax(-1)
    out = _evaluate(ClsMetric(topk=(1, 5), prefix='cls'),
                    _samples(scores, labels), batch=5)
    for key in ('accuracy/top1', 'accuracy/top5', 'precision/macro',
                'recall/weighted', 'f1/macro', 'auroc/macro'):
        assert out[f'cls/{key}'] == pytest.approx(100.0), key


def test_topk_hand_value():
    # second-best class is the truth for samples 0 and 1; top-5 of 6 classes
    scores = torch.tensor([[.5, .3, .1, .05, .03, .02]] * 3)
    labels = [1, 1, 5]
    out = _evaluate(ClsMetric(topk=(1, 2, 5), auroc=False),
                    _samples(scores, labels))
    assert out['accuracy/top1'] == 0.0
    assert out['accuracy/top2'] == pytest.approx(100 * 2 / 3)
    assert out['accuracy/top5'] == pytest.approx(100 * 2 / 3)
    assert 'auroc/macro' not in out


def test_pred_label_only():
    samples = [
        DataSample().set_pred_label(p).set_gt_label(y)
        for p, y in zip([0, 1, 1, 0], [0, 1, 0, 0])
    ]
    out = _evaluate(ClsMetric(), samples,
                    meta=dict(classes=('a', 'b')))
    assert out['accuracy/top1'] == 75.0
    assert 'auroc/macro' not in out
    assert ClsMetric().last_results is None


def test_multi_label(tmp_path):
    scores = torch.tensor([[.9, .2, .6], [.1, .8, .3], [.7, .6, .2],
                           [.2, .1, .9]])
    gts = [[0], [1, 2], [0], [2]]
    samples = [
        DataSample().set_pred_score(s).set_pred_label(
            torch.nonzero(s >= .5).reshape(-1)).set_gt_label(g)
        for s, g in zip(scores, gts)
    ]
    metric = ClsMetric(multi_label=True, save_dir=str(tmp_path))
    out = _evaluate(metric, samples)
    assert set(out) == {
        'mAP', 'precision/macro', 'recall/macro', 'f1/macro',
        'precision/micro', 'recall/micro', 'f1/micro', 'auroc/macro'
    }
    # preds >= .5: [[1,0,1],[0,1,0],[1,1,0],[0,0,1]]
    # truth:       [[1,0,0],[0,1,1],[1,0,0],[0,0,1]]
    # tp=[2,1,1] fp=[0,1,1] fn=[0,0,1]
    assert out['precision/micro'] == pytest.approx(100 * 4 / 6)
    assert out['recall/micro'] == pytest.approx(100 * 4 / 5)
    assert out['f1/macro'] == pytest.approx(100 * (1 + 2 / 3 + .5) / 3)
    # class 0 and 1 ranked perfectly; class 2: pos .9,.3 vs neg .6,.2
    # AP = (1/1 + 2/3) / 2 ; AUROC = 3/4
    assert out['mAP'] == pytest.approx(100 * (1 + 1 + (1 + 2 / 3) / 2) / 3)
    assert out['auroc/macro'] == pytest.approx(100 * (1 + 1 + .75) / 3)
    assert metric.last_results['labels'].shape == (4, 3)
    assert metric.last_results['multi_label'] is True
    with open(tmp_path / 'per_class.csv') as fh:
        rows = list(csv.DictReader(fh))
    assert [r['support'] for r in rows] == ['2', '1', '2']
    assert 'ap' in rows[0]


def test_per_class_table_logged(capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('test_cls_metric_table')
    scores = torch.tensor([[.9, .1], [.2, .8], [.6, .4]])
    _evaluate(ClsMetric(), _samples(scores, [0, 1, 1]),
              meta=dict(classes=('neg', 'pos')))
    text = capsys.readouterr().out
    assert 'Per-class results' in text
    assert 'precision' in text and 'support' in text and 'pos' in text


def test_undefined_auroc_is_left_out():
    scores = torch.tensor([[.9, .1], [.8, .2]])
    out = _evaluate(ClsMetric(), _samples(scores, [0, 0]))
    assert 'auroc/macro' not in out
    assert out['accuracy/top1'] == 100.0
    assert not any(math.isnan(v) for v in out.values())
