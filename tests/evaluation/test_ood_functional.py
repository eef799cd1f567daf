"""OOD scores and metrics against values computed by hand."""
import math

import pytest
import torch

from dinov3_mm.evaluation.functional import (fit_mahalanobis, fpr_at_tpr,
                                             knn_score, logit_score,
                                             mahalanobis_score, ood_metrics,
                                             threshold_at_tpr)

ID = torch.tensor([0.9, 0.8, 0.7, 0.6])
OOD = torch.tensor([0.75, 0.5, 0.4])


def test_metrics_by_hand():
    got = ood_metrics(ID, OOD)
    # 10 of the 12 (ID, OOD) pairs are ordered right
    assert got['auroc'] == pytest.approx(100 * 10 / 12)
    # keeping 95 % of 4 ID scores keeps all: threshold 0.6 keeps OOD 0.75
    assert threshold_at_tpr(ID) == pytest.approx(0.6)
    assert got['fpr@95tpr'] == pytest.approx(100 / 3)
    # ID ranks 1, 2, 4, 5 of the descending order: (1 + 1 + 3/4 + 4/5) / 4
    assert got['aupr_in'] == pytest.approx(100 * (1 + 1 + 0.75 + 0.8) / 4)
    # OOD ranks 1, 2, 5 of the ascending order: (1 + 1 + 3/5) / 3
    assert got['aupr_out'] == pytest.approx(100 * (1 + 1 + 0.6) / 3)


def test_ties_and_thresholds():
    assert ood_metrics([0.5], [0.5])['auroc'] == pytest.approx(50)
    # OOD 0.7 ties ID 0.7 (half a pair): 3 + 3 + 2.5 + 2 of 12 pairs
    tied = ood_metrics(ID, [0.7, 0.5, 0.4])
    assert tied['auroc'] == pytest.approx(100 * 10.5 / 12)
    # the threshold 0.7 keeps ID 0.9, 0.8, 0.7 and OOD 0.7: precision 3/4
    assert tied['aupr_in'] == pytest.approx(100 * (1 + 1 + 0.75 + 0.8) / 4)
    assert fpr_at_tpr(ID, OOD, tpr=0.5) == 0  # threshold 0.8
    assert threshold_at_tpr(torch.arange(20.), 0.95) == 1  # 19 of 20 kept
    with pytest.raises(ValueError, match='in-distribution and OOD'):
        ood_metrics(ID, [])


def test_logit_scores():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    total = math.exp(2) + 2
    assert logit_score(logits, 'msp').item() == pytest.approx(
        math.exp(2) / total)
    assert logit_score(logits, 'max_logit').item() == 2
    assert logit_score(logits, 'energy').item() == pytest.approx(
        math.log(total))
    assert logit_score(logits, 'energy', 2.0).item() == pytest.approx(
        2 * math.log(math.exp(1) + 2))
    with pytest.raises(ValueError, match="'entropy'.*'msp'"):
        logit_score(logits, 'entropy')


def test_knn_score_is_minus_cosine_distance_of_kth_neighbour():
    train = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert knn_score(train, torch.tensor([[3.0, 3.0]]), k=1).item() == \
        pytest.approx(math.sqrt(0.5) - 1)
    assert knn_score(train, torch.tensor([[1.0, 0.0]]), k=2).item() == \
        pytest.approx(-1.0)
    assert knn_score(train, train, k=1, exclude_self=True).tolist() == \
        pytest.approx([-1.0, -1.0])
    with pytest.raises(ValueError, match='k=3 needs at least 3'):
        knn_score(train, train, k=3)
    with pytest.raises(ValueError, match='width 3 .* width 2'):
        knn_score(train, torch.ones(1, 3), k=1)


def test_knn_score_in_chunks_equals_one_block(monkeypatch):
    from dinov3_mm.evaluation.functional import ood
    train, query = torch.randn(50, 8), torch.randn(37, 8)
    whole = knn_score(train, query, k=5)
    monkeypatch.setattr(ood, 'KNN_CHUNK', 4)
    assert torch.equal(knn_score(train, query, k=5), whole)


def test_mahalanobis_is_zero_at_a_class_mean_and_grows_away():
    feats = torch.tensor([[0., 0.], [2., 0.], [0., 2.], [2., 2.],
                          [10., 10.], [12., 10.], [10., 12.], [12., 12.]])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    fitted = fit_mahalanobis(feats, labels)
    assert fitted['means'].tolist() == [[1., 1.], [11., 11.]]
    # shared covariance: diag(1, 1) -> squared Euclidean distances
    scores = mahalanobis_score(fitted, torch.tensor(
        [[1., 1.], [11., 11.], [1., 3.], [6., 6.]]))
    assert scores.tolist() == pytest.approx([0, 0, -4, -50], abs=1e-4)
