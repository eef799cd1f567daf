"""Classification heads: feature concatenation, losses checked by hand."""
import math

import pytest
import torch

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample


def head(**kwargs):
    cfg = dict(type='LinearClsHead', num_classes=3, in_channels=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def samples(*labels):
    return [DataSample().set_gt_label(label) for label in labels]


def fixed_logits(module, logits):
    """Make the head output ``logits`` for an identity-like input."""
    with torch.no_grad():
        module.fc.weight.zero_()
        module.fc.bias.copy_(logits)
    return (torch.zeros(1, 4), )


def test_concatenates_probe_features_and_pools_maps():
    h = head(in_channels=2 + 3 + 5)
    feats = (torch.randn(2, 2), torch.randn(2, 3), torch.randn(2, 5, 4, 4))
    expected = torch.cat([feats[0], feats[1], feats[2].mean((2, 3))], 1)
    torch.testing.assert_close(h.pre_logits(feats), expected)
    assert h(feats).shape == (2, 3)


def test_label_smoothing_by_hand():
    h = head(loss=dict(type='CrossEntropyLoss', label_smoothing=0.1))
    feats = fixed_logits(h, torch.tensor([2.0, 0.0, -1.0]))
    logp = torch.tensor([2.0, 0.0, -1.0]).log_softmax(0)
    # target: 0.9 on class 1, 0.1 / 3 on every class
    expected = -(0.9 * logp[1] + 0.1 / 3 * logp.sum())
    loss = h.loss(feats, samples(1))['loss']
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_class_weights_by_hand():
    weights = [1.0, 3.0, 0.5]
    h = head(loss=dict(type='CrossEntropyLoss', class_weight=weights))
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    with torch.no_grad():
        h.fc.weight.zero_()
        h.fc.weight[:, :3] = torch.eye(3)
        h.fc.bias.zero_()
    feats = (torch.cat([logits, torch.zeros(2, 1)], 1), )
    nll0 = -logits[0].log_softmax(0)[0]
    nll1 = -logits[1].log_softmax(0)[1]
    expected = (1.0 * nll0 + 3.0 * nll1) / (1.0 + 3.0)
    loss = h.loss(feats, samples(0, 1))['loss']
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    plain = head()
    plain.load_state_dict(h.state_dict())
    unweighted = plain.loss(feats, samples(0, 1))['loss']
    assert unweighted.item() == pytest.approx(((nll0 + nll1) / 2).item())


def test_soft_targets_use_soft_cross_entropy():
    h = head(loss=dict(type='CrossEntropyLoss', label_smoothing=0.2))
    feats = fixed_logits(h, torch.tensor([0.5, 1.5, -0.5]))
    logp = torch.tensor([0.5, 1.5, -0.5]).log_softmax(0)
    soft = torch.tensor([0.7, 0.3, 0.0])
    data = samples(0)
    data[0].set_gt_score(soft)
    smoothed = soft * 0.8 + 0.2 / 3
    expected = -(smoothed * logp).sum()
    losses = h.loss(feats, data)
    assert losses['loss'].item() == pytest.approx(expected.item(), rel=1e-6)
    assert losses['accuracy'].item() == 0.0  # argmax 1 vs soft argmax 0


def test_multi_label_pos_weight_by_hand():
    h = head(num_classes=2, multi_label=True,
             loss=dict(type='CrossEntropyLoss', use_sigmoid=True,
                       pos_weight=[4.0, 1.0]))
    with torch.no_grad():
        h.fc.weight.zero_()
        h.fc.bias.copy_(torch.tensor([0.0, 1.0]))
    loss = h.loss((torch.zeros(1, 4), ), samples([0]))['loss']

    def softplus(x):
        return math.log1p(math.exp(x))

    # class 0 positive (weight 4): 4 * -log(sigmoid(0)); class 1 negative
    expected = (4 * softplus(-0.0) + softplus(1.0)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    pred = h.predict((torch.zeros(1, 4), ))[0]
    assert pred.pred_label.tolist() == [0, 1]


def test_mlp_head_and_errors():
    mlp = MODELS.build(dict(type='MLPClsHead', num_classes=5, in_channels=8,
                            hidden_channels=16, dropout=0.1))
    assert mlp((torch.randn(3, 8), )).shape == (3, 5)
    assert mlp.loss((torch.randn(2, 8), ), samples(0, 4))['loss'].ndim == 0
    with pytest.raises(ValueError, match='outside'):
        mlp.loss((torch.randn(1, 8), ), samples(5))
    with pytest.raises(ValueError, match='multi_label=True'):
        mlp.loss((torch.randn(1, 8), ), samples([0, 1]))
    with pytest.raises(ValueError, match='class_weight has 2'):
        head(loss=dict(type='CrossEntropyLoss', class_weight=[1, 2])).loss(
            (torch.randn(1, 4), ), samples(0))
