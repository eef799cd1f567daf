"""Classification metric functions against hand-computed values.

Expected numbers come from working the small examples out by hand (or with
the brute-force references below, which use different formulas from the
code under test: pairwise Mann-Whitney counting for AUROC and the
"mean precision at each positive" form of average precision).
"""
import math

import numpy as np
import pytest
import torch

from dinov3_mm.evaluation.functional import (auroc, average_precision,
                                             binary_auroc, confusion_matrix,
                                             pr_curve, precision_recall_f1,
                                             roc_curve, topk_accuracy)


def mann_whitney_auc(scores, labels):
    """P(score_pos > score_neg) + 0.5 P(tie), by counting all pairs."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brute_ap(scores, labels):
    """Mean over positives of the precision at that positive's score."""
    scores, labels = list(scores), list(labels)
    pos = [s for s, y in zip(scores, labels) if y]
    if not pos:
        return math.nan
    total = 0.0
    for t in pos:
        above = [y for s, y in zip(scores, labels) if s >= t]
        total += sum(above) / len(above)
    return total / len(pos)


# ------------------------------------------------------------- accuracy
def test_topk_accuracy_hand_values_and_ties():
    scores = torch.tensor([[.1, .5, .4], [.8, .1, .1], [.3, .3, .4]])
    labels = torch.tensor([2, 0, 1])
    assert topk_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    # sample 2: tie .3/.3 -> the lower index (0) ranks first, so 1 misses
    assert topk_accuracy(scores, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(scores, labels, 3) == 1.0
    assert topk_accuracy(scores.numpy(), labels.numpy(), 1) == \
        pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        topk_accuracy(scores, labels, 4)


# ---------------------------------------------------- confusion / P R F1
def test_confusion_matrix_layout():
    cm = confusion_matrix([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match='labels'):
        confusion_matrix([0], [3], 3)


def test_precision_recall_f1_multiclass_hand_values():
    pred, labels = [0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]
    p, r, f, support = precision_recall_f1(pred, labels, 3, None)
    assert p.tolist() == pytest.approx([.5, 2 / 3, 1.])
    assert r.tolist() == pytest.approx([.5, 1., .5])
    assert f.tolist() == pytest.approx([.5, .8, 2 / 3])
    assert support.tolist() == [2, 2, 2]
    p, r, f, _ = precision_recall_f1(pred, labels, 3, 'macro')
    assert (p, r, f) == pytest.approx(((.5 + 2 / 3 + 1) / 3, 2 / 3,
                                       (.5 + .8 + 2 / 3) / 3))
    # equal supports: weighted == macro
    pw, rw, fw, _ = precision_recall_f1(pred, labels, 3, 'weighted')
    assert (pw, rw, fw) == pytest.approx((p, r, f))
    # single-label micro == accuracy
    pm, rm, fm, _ = precision_recall_f1(pred, labels, 3, 'micro')
    assert (pm, rm, fm) == pytest.approx((4 / 6, ) * 3)


def test_precision_recall_f1_weighted_and_absent_classes():
    # supports 3 and 1: class 0 P=1 R=2/3 F=.8 ; class 1 P=.5 R=1 F=2/3
    pred, labels = [0, 0, 1, 1], [0, 0, 0, 1]
    p, r, f, _ = precision_recall_f1(pred, labels, 3, 'weighted')
    assert p == pytest.approx(.75 * 1 + .25 * .5)
    assert r == pytest.approx(.75 * 2 / 3 + .25 * 1)
    assert f == pytest.approx(.75 * .8 + .25 * 2 / 3)
    # class 2 never occurs (neither truth nor prediction): not in the macro
    p, r, f, _ = precision_recall_f1([0, 0, 1], [0, 0, 1], 3, 'macro')
    assert (p, r, f) == (1.0, 1.0, 1.0)
    # predicted but absent from the truth: precision 0 counts in the macro
    p, r, f, _ = precision_recall_f1([0, 2, 1], [0, 0, 1], 3, 'macro')
    assert p == pytest.approx((1 + 1 + 0) / 3)
    assert r == pytest.approx((.5 + 1 + 0) / 3)


def test_precision_recall_f1_multilabel_indicator():
    pred = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    true = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 0, 0]])
    # tp=[2,1,0] fp=[0,1,1] fn=[0,0,1]
    p, r, f, support = precision_recall_f1(pred, true, average=None)
    assert p.tolist() == pytest.approx([1., .5, 0.])
    assert r.tolist() == pytest.approx([1., 1., 0.])
    assert support.tolist() == [2, 1, 1]
    pm, rm, fm, _ = precision_recall_f1(pred, true, average='micro')
    assert (pm, rm) == pytest.approx((3 / 5, 3 / 4))
    assert fm == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    _, _, fmac, _ = precision_recall_f1(pred, true, average='macro')
    assert fmac == pytest.approx((1 + 2 / 3 + 0) / 3)


# ------------------------------------------------------------------ ROC
def test_roc_curve_and_auroc_binary_hand_values():
    scores, labels = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    fpr, tpr, thr = roc_curve(scores, labels)
    assert fpr.tolist() == pytest.approx([0, 0, .5, .5, 1])
    assert tpr.tolist() == pytest.approx([0, .5, .5, 1, 1])
    assert thr[0] == math.inf
    assert thr[1:].tolist() == pytest.approx([.8, .4, .35, .1])
    assert binary_auroc(scores, labels) == pytest.approx(0.75)
    assert auroc(np.array(scores), np.array(labels)) == pytest.approx(.75)


@pytest.mark.parametrize('scores,labels,expected', [
    ([.2, .5, .5, .9], [0, 0, 1, 1], 0.875),  # one tied pair counts 1/2
    ([.5, .5, .5, .5], [0, 1, 0, 1], 0.5),  # all tied: the diagonal
    ([.1, .2, .8, .9], [0, 0, 1, 1], 1.0),  # perfect
    ([.9, .8, .2, .1], [0, 0, 1, 1], 0.0),  # perfectly wrong
])
def test_binary_auroc_ties(scores, labels, expected):
    assert binary_auroc(scores, labels) == pytest.approx(expected)


def test_binary_auroc_undefined():
    assert math.isnan(binary_auroc([.1, .9], [1, 1]))
    assert math.isnan(binary_auroc([.1, .9], [0, 0]))


def test_multiclass_auroc_matches_pairwise_reference():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(200, 4, generator=gen)
    scores = (scores * 10).round() / 10  # many ties
    labels = torch.randint(0, 4, (200, ), generator=gen)
    per_class = auroc(scores, labels, average=None)
    expected = [
        mann_whitney_auc(scores[:, c].tolist(), (labels == c).tolist())
        for c in range(4)
    ]
    assert per_class.tolist() == pytest.approx(expected, abs=1e-12)
    assert auroc(scores, labels) == pytest.approx(np.mean(expected))
    support = np.bincount(labels.numpy(), minlength=4)
    assert auroc(scores, labels, average='weighted') == pytest.approx(
        np.average(expected, weights=support))
    # random scores: near chance
    assert 0.35 < auroc(scores, labels) < 0.65


def test_multiclass_auroc_skips_undefined_class():
    scores = torch.tensor([[.7, .2, .1], [.6, .3, .1], [.2, .7, .1],
                           [.4, .5, .1]])
    labels = torch.tensor([0, 0, 1, 1])  # class 2 has no positives
    per_class = auroc(scores, labels, average=None)
    assert per_class[:2].tolist() == [1.0, 1.0]
    assert math.isnan(per_class[2])
    assert auroc(scores, labels) == 1.0


# ------------------------------------------------------------------- PR
def test_pr_curve_and_average_precision_hand_values():
    scores, labels = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    precision, recall, thr = pr_curve(scores, labels)
    assert precision.tolist() == pytest.approx([.5, 2 / 3, .5, 1, 1])
    assert recall.tolist() == pytest.approx([1, 1, .5, .5, 0])
    assert thr.tolist() == pytest.approx([.1, .35, .4, .8])
    assert average_precision(scores, labels) == pytest.approx(5 / 6)
    assert average_precision([.9, .8, .1], [1, 1, 0]) == 1.0
    assert math.isnan(average_precision([.3, .2], [0, 0]))


def test_average_precision_matches_reference_with_ties():
    gen = torch.Generator().manual_seed(1)
    scores = ((torch.rand(150, 3, generator=gen) * 8).round() / 8)
    target = torch.rand(150, 3, generator=gen) < 0.3
    per_class = average_precision(scores, target, average=None)
    expected = [
        brute_ap(scores[:, c].tolist(), target[:, c].tolist())
        for c in range(3)
    ]
    assert per_class.tolist() == pytest.approx(expected, abs=1e-12)
    assert average_precision(scores, target) == pytest.approx(
        np.mean(expected))
