"""Threshold sweeps, operating points and OperatingPointMetric, checked
against a hand-computed case.

Scores 0.9 0.8 0.7 0.6 0.5 0.4 with truth 1 1 0 1 0 0 (3 defects, 3 good):

====  ==  ==  =========  =========  =====  ====
thr   tp  fp  precision  recall     f1     fpr
====  ==  ==  =========  =========  =====  ====
0.9   1   0   1          1/3        1/2    0
0.8   2   0   1          2/3        4/5    0
0.7   2   1   2/3        2/3        2/3    1/3
0.6   3   1   3/4        1          6/7    1/3
0.5   3   2   3/5        1          3/4    2/3
0.4   3   3   1/2        1          2/3    1
====  ==  ==  =========  =========  =====  ====

AUROC = 8/9 (8 of the 9 defect/good pairs are ordered right); AP =
1/3 * 1 + 1/3 * 1 + 1/3 * 3/4 = 11/12.
"""
import csv
import json
import math

import pytest
import torch

from dinov3_mm.registry import METRICS
from dinov3_mm.structures import DataSample
from dinov3_mm_industrial.operating_point import (best_f1,
                                                  precision_at_recall,
                                                  recall_at_precision,
                                                  threshold_sweep, write_sweep)

SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
TRUTH = [1, 1, 0, 1, 0, 0]
LABELS = [1, 2, 0, 1, 0, 0]  # good, scratch, blob
TABLE = dict(
    threshold=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
    tp=[1, 2, 2, 3, 3, 3],
    fp=[0, 0, 1, 1, 2, 3],
    precision=[1, 1, 2 / 3, 3 / 4, 3 / 5, 1 / 2],
    recall=[1 / 3, 2 / 3, 2 / 3, 1, 1, 1],
    f1=[1 / 2, 4 / 5, 2 / 3, 6 / 7, 3 / 4, 2 / 3],
    fpr=[0, 0, 1 / 3, 1 / 3, 2 / 3, 1],
)


def test_sweep_matches_hand_table():
    sweep = threshold_sweep(SCORES, TRUTH)
    for key, expected in TABLE.items():
        assert sweep[key].tolist() == pytest.approx(expected), key
    assert (sweep['tn'] + sweep['fp']).tolist() == [3] * 6
    assert (sweep['fn'] + sweep['tp']).tolist() == [3] * 6


def test_operating_points_match_hand_table():
    sweep = threshold_sweep(SCORES, TRUTH)
    p = precision_at_recall(sweep, 0.95)
    assert p['threshold'] == pytest.approx(0.6)
    assert p['precision'] == pytest.approx(0.75)
    assert p['fpr'] == pytest.approx(1 / 3)
    r = recall_at_precision(sweep, 0.9)
    assert r['threshold'] == pytest.approx(0.8)
    assert r['recall'] == pytest.approx(2 / 3)
    # precision >= 0.6 holds down to 0.5; recall 1 is reached at 0.6 and
    # 0.5: the tie goes to the higher threshold (fewer alarms)
    r = recall_at_precision(sweep, 0.6)
    assert (r['threshold'], r['recall']) == pytest.approx((0.6, 1.0))
    r = recall_at_precision(sweep, 0.7)  # 0.5 (precision 3/5) drops out
    assert (r['threshold'], r['precision']) == pytest.approx((0.6, 0.75))
    f = best_f1(sweep)
    assert (f['threshold'], f['f1']) == pytest.approx((0.6, 6 / 7))


def test_unreachable_target_gives_nan_threshold():
    sweep = threshold_sweep([0.9, 0.8, 0.1], [0, 1, 1])  # best precision 2/3
    r = recall_at_precision(sweep, 0.9)
    assert math.isnan(r['threshold']) and r['recall'] == 0.0
    grid = threshold_sweep([0.9, 0.8, 0.1], [0, 1, 1], thresholds=[0.95])
    p = precision_at_recall(grid, 0.5)
    assert math.isnan(p['threshold']) and p['precision'] == 0.0


def test_grid_thresholds_and_ties():
    # ties: two samples share 0.5; a grid threshold between scores
    sweep = threshold_sweep([0.5, 0.5, 0.2, 0.8], [1, 0, 0, 1],
                            thresholds=[1.0, 0.5, 0.3, 0.0])
    assert sweep['threshold'].tolist() == [1.0, 0.5, 0.3, 0.0]
    assert sweep['tp'].tolist() == [0, 2, 2, 2]
    assert sweep['fp'].tolist() == [0, 1, 1, 2]
    assert sweep['precision'].tolist()[0] == 0.0  # nothing predicted
    assert sweep['recall'].tolist() == [0, 1, 1, 1]


def test_write_sweep_csv_and_json(tmp_path):
    sweep = threshold_sweep(SCORES, TRUTH)
    path = write_sweep(str(tmp_path / 'a' / 'sweep.csv'), sweep)
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert list(rows[3]) == ['threshold', 'tp', 'fp', 'tn', 'fn',
                             'precision', 'recall', 'f1', 'fpr']
    assert (rows[3]['tp'], rows[3]['fp'], rows[3]['tn'], rows[3]['fn']) == \
        ('3', '1', '2', '0')
    assert float(rows[3]['f1']) == pytest.approx(6 / 7)
    path = write_sweep(str(tmp_path / 'sweep.json'),
                       threshold_sweep([0.3, 0.2], [0, 0]), dict(x=math.nan))
    data = json.loads(open(path).read())
    assert data['summary'] == {'x': None}
    assert data['sweep'][0]['recall'] is None  # no positives: nan -> null
    with pytest.raises(ValueError, match='must end with .csv or .json'):
        write_sweep(str(tmp_path / 'sweep.txt'), sweep)


def _samples():
    """Predictions whose defect score (1 - p_good) is SCORES."""
    samples = []
    for s, label in zip(SCORES, LABELS):
        sample = DataSample().set_gt_label(label)
        sample.set_pred_score(torch.tensor([1 - s, 0.25 * s, 0.75 * s]))
        samples.append(sample.to_dict())
    return samples


def _evaluate(metric, classes=('good', 'scratch', 'blob')):
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, _samples())
    return metric.evaluate(len(SCORES))


def test_metric_reports_operating_points(tmp_path):
    sweep_file = tmp_path / 'out' / 'sweep.csv'
    metric = METRICS.build(
        dict(type='OperatingPointMetric', negative='good',
             target_recall=0.95, target_precision=0.9,
             sweep_file=str(sweep_file)))
    res = _evaluate(metric)
    assert res['defect/auroc'] == pytest.approx(100 * 8 / 9)
    assert res['defect/ap'] == pytest.approx(100 * 11 / 12)
    assert res['defect/precision@recall95'] == pytest.approx(75.0)
    assert res['defect/threshold@recall95'] == pytest.approx(0.6)
    assert res['defect/recall@precision90'] == pytest.approx(100 * 2 / 3)
    assert res['defect/threshold@precision90'] == pytest.approx(0.8)
    assert res['defect/best_f1'] == pytest.approx(100 * 6 / 7)
    assert res['defect/threshold@best_f1'] == pytest.approx(0.6)
    # select defaults to the target recall
    assert res['defect/threshold'] == pytest.approx(0.6)
    assert res['defect/recall'] == pytest.approx(100.0)
    assert res['defect/fpr'] == pytest.approx(100 / 3)
    with open(sweep_file, newline='') as f:
        assert len(list(csv.DictReader(f))) == 6


def test_metric_positive_classes_and_selection(tmp_path):
    # positive='scratch' only: its score is 0.25 * s, blob samples are good
    metric = METRICS.build(
        dict(type='OperatingPointMetric', positive=['scratch'],
             target_recall=None, target_precision=0.5, prefix='scr',
             sweep_file=str(tmp_path / 's.json')))
    res = _evaluate(metric)
    # scratch at s=0.9 and 0.6, blob at s=0.8 counts as negative now:
    # precision 1, 1/2, 1/3, 1/2 at s=0.9, 0.8, 0.7, 0.6 -> recall 1 at 0.6
    assert res['scr/recall@precision50'] == pytest.approx(100.0)
    assert res['scr/threshold'] == pytest.approx(0.25 * 0.6)
    assert res['scr/precision'] == pytest.approx(50.0)
    summary = json.loads((tmp_path / 's.json').read_text())['summary']
    assert summary['positive_classes'] == [1]
    assert summary['positive_names'] == ['scratch']
    assert summary['num_positive'] == 2 and summary['select'] == 'precision'


def test_metric_thresholds_grid_and_max_mode():
    metric = METRICS.build(
        dict(type='OperatingPointMetric', positive=[1, 2], thresholds=3,
             score_mode='max', target_recall=None))
    res = _evaluate(metric)
    # max of (0.25 s, 0.75 s) = 0.75 s; the grid is 0, 0.5, 1: at 0.5 the
    # samples with 0.75 s >= 0.5 (s >= 2/3: 0.9, 0.8, 0.7) are flagged
    sweep = metric.last_sweep
    assert sweep['threshold'].tolist() == [1.0, 0.5, 0.0]
    assert sweep['tp'].tolist() == [0, 2, 3]
    assert sweep['fp'].tolist() == [0, 1, 3]
    assert res['defect/threshold'] == pytest.approx(0.5)  # best F1 = 2/3
    assert res['defect/f1'] == pytest.approx(100 * 2 / 3)


def test_metric_errors():
    with pytest.raises(ValueError, match='not both'):
        METRICS.build(dict(type='OperatingPointMetric', positive='a',
                           negative='b'))
    with pytest.raises(ValueError, match='needs target_precision'):
        METRICS.build(dict(type='OperatingPointMetric', select='precision'))
    metric = METRICS.build(dict(type='OperatingPointMetric',
                                negative='ok'))
    with pytest.raises(ValueError, match="class 'ok' is not in the dataset"):
        _evaluate(metric)
    metric = METRICS.build(dict(type='OperatingPointMetric',
                                negative=[0, 1, 2]))
    with pytest.raises(ValueError, match='at least one class must be'):
        _evaluate(metric)
