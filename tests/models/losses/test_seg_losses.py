"""Segmentation losses checked against hand computations."""
import math

import pytest
import torch
import torch.nn.functional as F

from dinov3_mm.models.losses.seg_losses import (CEDiceLoss, DiceLoss,
                                                FocalLoss,
                                                SegCrossEntropyLoss)
from dinov3_mm.registry import MODELS


def ce(logits, cls):
    """-log softmax(logits)[cls] for a list of logits."""
    return -logits[cls] + math.log(sum(math.exp(v) for v in logits))


def one_row():
    # B=1, C=2, 1x3 pixels; targets 0, 1, ignore.
    logits = torch.tensor([[[[1.0, 0.0, 5.0]], [[0.0, 2.0, -5.0]]]])
    target = torch.tensor([[[0, 1, 255]]])
    return logits, target


def test_cross_entropy_ignore_and_class_weight():
    logits, target = one_row()
    l0, l1 = ce([1.0, 0.0], 0), ce([0.0, 2.0], 1)
    loss = MODELS.build(dict(type='SegCrossEntropyLoss'))
    assert isinstance(loss, SegCrossEntropyLoss)
    assert loss(logits, target).item() == pytest.approx((l0 + l1) / 2)
    weighted = SegCrossEntropyLoss(class_weight=[2.0, 0.5], loss_weight=3.0)
    # mmseg convention: divided by the number of valid pixels.
    assert weighted(logits, target).item() == pytest.approx(
        3.0 * (2.0 * l0 + 0.5 * l1) / 2)
    over_all = SegCrossEntropyLoss(avg_non_ignore=False)
    assert over_all(logits, target).item() == pytest.approx((l0 + l1) / 3)
    assert loss.loss_name == 'loss_ce'


def test_cross_entropy_all_ignored_is_zero_with_graph():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    out = SegCrossEntropyLoss()(logits, torch.full((1, 2, 2), 255))
    assert out.item() == 0.0
    out.backward()
    assert logits.grad is not None


def test_logits_resized_to_target():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 16, 16))
    for loss in (SegCrossEntropyLoss(), DiceLoss(), FocalLoss(),
                 CEDiceLoss()):
        out = loss(logits, target)
        assert out.ndim == 0 and torch.isfinite(out)
    up = F.interpolate(logits, size=(16, 16), mode='bilinear',
                       align_corners=False)
    assert SegCrossEntropyLoss()(logits, target).item() == pytest.approx(
        F.cross_entropy(up, target).item(), rel=1e-5)


def test_dice_perfect_prediction_and_hand_value():
    target = torch.tensor([[[0, 1], [2, 255]]])
    perfect = F.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2) * 50.0
    assert DiceLoss()(perfect.float(), target).item() == pytest.approx(
        0.0, abs=1e-6)
    # Uniform prediction over 3 classes, 3 valid pixels, one per class:
    # per class num = 2 * 1/3 + 1, den = 3 * 1/9 + 1 + 1.
    uniform = torch.zeros(1, 3, 2, 2)
    expected = 1 - (2 / 3 + 1) / (1 / 3 + 2)
    assert DiceLoss()(uniform, target).item() == pytest.approx(expected)
    assert DiceLoss(exponent=1, smooth=0)(uniform, target).item() == \
        pytest.approx(1 - (2 / 3) / (1 + 1))


def test_focal_gamma_zero_equals_cross_entropy():
    logits = torch.randn(2, 4, 3, 3)
    target = torch.randint(0, 4, (2, 3, 3))
    target[0, 0, 0] = 255
    ref = SegCrossEntropyLoss()(logits, target)
    focal = MODELS.build(dict(type='FocalLoss', gamma=0.0, alpha=None))
    assert isinstance(focal, FocalLoss)
    assert focal(logits, target).item() == pytest.approx(ref.item(), rel=1e-5)
    assert FocalLoss(gamma=0.0, alpha=0.25)(logits, target).item() == \
        pytest.approx(0.25 * ref.item(), rel=1e-5)
    per_class = FocalLoss(gamma=0.0, alpha=[1.0, 2.0, 0.5, 1.0])
    assert per_class(logits, target).item() == pytest.approx(
        SegCrossEntropyLoss(class_weight=[1.0, 2.0, 0.5, 1.0])(
            logits, target).item(), rel=1e-5)


def test_focal_hand_value():
    logits, target = one_row()
    p0 = math.exp(1) / (math.exp(1) + 1)
    p1 = math.exp(2) / (math.exp(2) + 1)
    expected = 0.5 * (-(1 - p0)**2 * math.log(p0) - (1 - p1)**2 * math.log(p1))
    assert FocalLoss(alpha=None)(logits, target).item() == pytest.approx(
        expected)


def test_binary_sigmoid_path():
    logits = torch.tensor([[[[2.0, -1.0, 3.0]]]], requires_grad=True)
    target = torch.tensor([[[1, 0, 255]]])
    s = torch.sigmoid(torch.tensor([2.0, -1.0]))
    bce = (-math.log(s[0]) - math.log(1 - s[1])) / 2
    ce_loss = SegCrossEntropyLoss(use_sigmoid=True)(logits, target)
    assert ce_loss.item() == pytest.approx(bce, rel=1e-5)
    # Dice on the foreground: p = (s0, s1), t = (1, 0).
    dice = 1 - (2 * s[0] + 1) / (s[0]**2 + s[1]**2 + 1 + 1)
    assert DiceLoss(use_sigmoid=True)(logits, target).item() == \
        pytest.approx(dice.item(), rel=1e-5)
    focal = FocalLoss(use_sigmoid=True, gamma=0.0, alpha=0.25)
    assert focal(logits, target).item() == pytest.approx(
        (0.25 * -math.log(s[0]) + 0.75 * -math.log(1 - s[1])) / 2, rel=1e-5)
    both = MODELS.build(dict(type='CEDiceLoss', use_sigmoid=True,
                             ce_weight=2.0, dice_weight=0.5))
    total = both(logits, target)
    assert total.item() == pytest.approx(2 * bce + 0.5 * dice.item(),
                                         rel=1e-5)
    total.backward()
    assert logits.grad[0, 0, 0, 2] == 0  # ignored pixel
    with pytest.raises(ValueError):
        DiceLoss(use_sigmoid=True)(torch.zeros(1, 2, 1, 3), target)


def test_ce_dice_weighted_combination():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    combo = CEDiceLoss(ce_weight=0.3, dice_weight=2.0, loss_weight=2.0)
    expected = 2.0 * (0.3 * SegCrossEntropyLoss()(logits, target) +
                      2.0 * DiceLoss()(logits, target))
    assert combo(logits, target).item() == pytest.approx(expected.item(),
                                                         rel=1e-5)
    assert combo.loss_name == 'loss_ce_dice'
