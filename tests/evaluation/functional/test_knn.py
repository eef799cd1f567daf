"""Weighted k-NN classification of features."""
import math

import pytest
import torch

from dinov3_mm.evaluation.functional import knn_accuracy, knn_classify


def _clusters(n_per_class=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.arange(2).repeat_interleave(n_per_class)
    noise = torch.randn(len(labels), 3, generator=gen)
    feats = centres[labels] + 0.1 * noise
    return feats, labels


def test_two_clusters_are_separated():
    train, train_labels = _clusters(seed=0)
    test, test_labels = _clusters(n_per_class=5, seed=1)
    scores = knn_classify(train, train_labels, test, num_classes=2, k=5)
    assert scores.shape == (10, 2) and scores.dtype == torch.float32
    assert torch.equal(scores.argmax(1), test_labels)
    assert knn_accuracy(train, train_labels, test, test_labels,
                        num_classes=2, k=5) == {'top1': 100.0}
    wrong = 1 - test_labels
    assert knn_accuracy(train, train_labels, test, wrong, 2,
                        k=5)['top1'] == 0.0


def test_weighted_vote_formula_on_three_points():
    # unit vectors; the query's cosine similarities are 0.8, 0.96 and 0.6
    train = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[0.8, 0.6]])
    t = 0.5
    scores = knn_classify(train, labels, query, num_classes=3, k=3,
                          temperature=t)
    expected = torch.tensor([[math.exp(0.8 / t),
                              math.exp(0.96 / t) + math.exp(0.6 / t), 0.0]])
    torch.testing.assert_close(scores, expected)
    # k=2 drops the farthest point (class 1, similarity 0.6)
    scores = knn_classify(train, labels, query, 3, k=2, temperature=t)
    torch.testing.assert_close(
        scores, torch.tensor([[math.exp(0.8 / t), math.exp(0.96 / t), 0.0]]))
    # features are normalised inside: scaling changes nothing
    scaled = knn_classify(train * torch.tensor([[3.0], [0.2], [7.0]]),
                          labels, query * 10, 3, k=2, temperature=t)
    torch.testing.assert_close(scaled, scores)
    # the default temperature (0.07) sharpens the vote towards the nearest
    default = knn_classify(train, labels, query, 3, k=3)
    torch.testing.assert_close(
        default[0, 1], torch.tensor(math.exp(0.96 / 0.07) +
                                    math.exp(0.6 / 0.07)))


def test_k_larger_than_train_set_uses_every_point():
    train, labels = _clusters(n_per_class=3)
    test, _ = _clusters(n_per_class=4, seed=2)
    capped = knn_classify(train, labels, test, 2, k=100)
    torch.testing.assert_close(capped, knn_classify(train, labels, test, 2,
                                                    k=len(train)))


def test_chunking_gives_identical_results():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(50, 16, generator=gen)
    labels = torch.randint(0, 7, (50, ), generator=gen)
    test = torch.randn(37, 16, generator=gen)
    whole = knn_classify(train, labels, test, 7, k=9, chunk_size=256)
    for chunk in (1, 5, 36, 37):
        part = knn_classify(train, labels, test, 7, k=9, chunk_size=chunk)
        # same neighbours; sums differ only by float rounding of the matmul
        torch.testing.assert_close(part, whole, rtol=1e-5, atol=0)
        assert torch.equal(part.argmax(1), whole.argmax(1))


def test_top5_only_with_five_classes():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(60, 8, generator=gen)
    labels = torch.arange(60) % 6
    test = torch.randn(20, 8, generator=gen)
    test_labels = torch.arange(20) % 6
    result = knn_accuracy(train, labels, test, test_labels, 6, k=10)
    assert set(result) == {'top1', 'top5'}
    assert 0 <= result['top1'] <= result['top5'] <= 100
    assert set(knn_accuracy(train, labels % 3, test, test_labels % 3,
                            3)) == {'top1'}
    # top-5 hit: fewer than 5 classes score higher and the class got a vote
    scores = knn_classify(train, labels, test, 6, k=10)
    own = scores.gather(1, test_labels[:, None])
    hit = ((scores > own).sum(1) < 5) & (own[:, 0] > 0)
    assert result['top5'] == pytest.approx(hit.float().mean().item() * 100)
    assert (scores == 0).any()  # the case where tie order would matter


def test_input_errors():
    train, labels = _clusters(n_per_class=2)
    with pytest.raises(ValueError, match='outside'):
        knn_classify(train, labels + 1, train, num_classes=2)
    with pytest.raises(ValueError, match='channels'):
        knn_classify(train, labels, train[:, :2], num_classes=2)
    with pytest.raises(ValueError, match='1-D'):
        knn_classify(train, labels[:3], train, num_classes=2)
    with pytest.raises(ValueError, match='integer'):
        knn_classify(train, labels.float(), train, num_classes=2)
    with pytest.raises(ValueError, match='k must'):
        knn_classify(train, labels, train, 2, k=0)
    with pytest.raises(ValueError, match='at least one training'):
        knn_classify(train[:0], labels[:0], train, 2)
