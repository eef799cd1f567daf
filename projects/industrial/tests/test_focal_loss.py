"""ClsFocalLoss: hand-computed values and use from a core classifier head."""
import math

import pytest
import torch
import torch.nn.functional as F

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample


def _loss(**kwargs):
    return MODELS.build(dict(type='ClsFocalLoss', **kwargs))


def test_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    p0 = math.exp(2) / (math.exp(2) + 2)  # true-class probabilities
    p1 = 1 / (2 + math.e)
    expected = -((1 - p0)**2 * math.log(p0) + (1 - p1)**2 * math.log(p1)) / 2
    assert _loss(gamma=2.0)(logits, labels).item() == pytest.approx(expected)
    # per-class alpha multiplies each sample by its true class's weight
    weighted = -(0.25 * (1 - p0)**2 * math.log(p0) +
                 2.0 * (1 - p1)**2 * math.log(p1)) / 2
    loss = _loss(gamma=2.0, alpha=[0.25, 1.0, 2.0], loss_weight=3.0)
    assert loss(logits, labels).item() == pytest.approx(3 * weighted)


def test_gamma_zero_is_cross_entropy_and_focuses_on_hard_samples():
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 4), torch.randint(0, 4, (8, ))
    ce = F.cross_entropy(logits, labels)
    assert _loss(gamma=0.0)(logits, labels).item() == pytest.approx(ce.item())
    easy = torch.tensor([[6.0, 0.0]])
    hard = torch.tensor([[0.0, 0.5]])
    target = torch.tensor([0])
    focal, plain = _loss(gamma=2.0), _loss(gamma=0.0)
    ratio_easy = focal(easy, target) / plain(easy, target)
    ratio_hard = focal(hard, target) / plain(hard, target)
    assert ratio_easy < 1e-4 < 0.3 < ratio_hard


def test_soft_targets_match_hard_labels_when_one_hot():
    torch.manual_seed(1)
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    loss = _loss(gamma=1.5, alpha=[0.5, 1.0, 2.0])
    hard = loss(logits, labels)
    soft = loss(logits, F.one_hot(labels, 3).float())
    assert soft.item() == pytest.approx(hard.item())
    mixed = loss(logits, torch.full((5, 3), 1 / 3))
    assert torch.isfinite(mixed) and mixed.item() > 0


def test_from_a_core_head_config():
    head = MODELS.build(
        dict(type='LinearClsHead', num_classes=3, in_channels=8,
             loss=dict(type='ClsFocalLoss', gamma=2.0, alpha=[0.5, 1, 1])))
    feats = (torch.randn(4, 8), )
    samples = [DataSample().set_gt_label(i % 3) for i in range(4)]
    losses = head.loss(feats, samples)
    expected = head.loss_module(head(feats), torch.tensor([0, 1, 2, 0]))
    assert losses['loss'].item() == pytest.approx(expected.item())
    losses['loss'].backward()
    assert head.fc.weight.grad is not None and head.fc.weight.grad.abs().sum()


def test_errors():
    with pytest.raises(ValueError, match='gamma must be >= 0'):
        _loss(gamma=-1)
    with pytest.raises(ValueError, match='2 alpha weights but the head '
                       'predicts 3'):
        _loss(alpha=[1, 1])(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='soft targets must sum to 1'):
        _loss()(torch.zeros(2, 3), torch.tensor([[1.0, 1, 0], [0, 0, 1]]))
    with pytest.raises(ValueError, match=r'takes \(N, C\) logits'):
        _loss()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4))
