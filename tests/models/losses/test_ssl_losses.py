"""DINO, iBOT, KoLeo and Gram losses checked against hand computations."""
import math

import numpy as np
import pytest
import torch

from dinov3_mm.models.losses.ssl_losses import (DINOClsTokenLoss, GramLoss,
                                                IBOTPatchLoss, KoLeoLoss)
from dinov3_mm.registry import MODELS


def ce(teacher_probs, student_logits, temp):
    """-sum_k p_k log softmax(s / temp)_k with Python floats."""
    scaled = [v / temp for v in student_logits]
    log_z = math.log(sum(math.exp(v) for v in scaled))
    return -sum(p * (v - log_z) for p, v in zip(teacher_probs, scaled))


def dino_reference(student, teacher, temp, ignore_diagonal):
    """Loop over images and crop pairs, as the official docstring."""
    total, count = 0.0, 0
    n_s, batch, _ = student.shape
    for b in range(batch):
        for s in range(n_s):
            for t in range(teacher.shape[0]):
                if ignore_diagonal and s == t:
                    continue
                total += ce(teacher[t, b].tolist(), student[s, b].tolist(),
                            temp)
                count += 1
    return total / count


def sinkhorn_reference(logits, temp, n_iterations):
    """Float64 numpy Sinkhorn-Knopp: Q (K, B), rows 1/K, columns 1/B."""
    q = np.exp(np.asarray(logits, dtype=np.float64) / temp).T
    n_k, n_b = q.shape
    q /= q.sum()
    for _ in range(n_iterations):
        q /= q.sum(axis=1, keepdims=True) * n_k
        q /= q.sum(axis=0, keepdims=True) * n_b
    return (q * n_b).T


def test_dino_loss_tiny_hand_computed():
    loss = DINOClsTokenLoss(out_dim=2, student_temp=0.5)
    student = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])  # S=2, B=1
    teacher = torch.tensor([[[0.75, 0.25]]])  # T=1
    # s0: softmax([2, 0]); s1: softmax([0, 4]); both against (0.75, 0.25).
    l0 = -(0.75 * (2 - math.log(math.exp(2) + 1)) + 0.25 *
           (0 - math.log(math.exp(2) + 1)))
    l1 = -(0.75 * (0 - math.log(1 + math.exp(4))) + 0.25 *
           (4 - math.log(1 + math.exp(4))))
    assert loss(student, teacher).item() == pytest.approx((l0 + l1) / 2,
                                                          rel=1e-6)
    # With ignore_diagonal the pair (s=0, t=0) is dropped: only s1 remains.
    assert loss(student, teacher,
                ignore_diagonal=True).item() == pytest.approx(l1, rel=1e-6)


@pytest.mark.parametrize('ignore_diagonal', [False, True])
def test_dino_loss_matches_pair_loop(ignore_diagonal):
    torch.manual_seed(0)
    student = torch.randn(4, 3, 5)
    teacher = torch.softmax(torch.randn(2, 3, 5), dim=-1)
    loss = MODELS.build(dict(type='DINOClsTokenLoss', out_dim=5))
    assert isinstance(loss, DINOClsTokenLoss)
    expected = dino_reference(student, teacher, 0.1, ignore_diagonal)
    got = loss(student, teacher, ignore_diagonal=ignore_diagonal)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_dino_loss_ignore_diagonal_drops_exactly_the_same_crop_pairs():
    loss = DINOClsTokenLoss(out_dim=3, student_temp=1.0)
    teacher = torch.softmax(torch.randn(2, 4, 3), dim=-1)
    student = torch.randn(2, 4, 3)
    # Make the diagonal pairs enormous: they must not leak into the loss.
    student_bad = student.clone()
    student_bad[0] = torch.tensor([-50.0, 50.0, 0.0])
    student_bad[1] = torch.tensor([50.0, -50.0, 0.0])
    teacher[0, :] = torch.tensor([1.0, 0.0, 0.0])
    teacher[1, :] = torch.tensor([0.0, 1.0, 0.0])
    off_diag = dino_reference(student_bad, teacher, 1.0, True)
    assert loss(student_bad, teacher,
                ignore_diagonal=True).item() == pytest.approx(off_diag,
                                                              rel=1e-5)
    with pytest.raises(ValueError, match='no crop pairs'):
        loss(student[:1], teacher[:1], ignore_diagonal=True)


def test_dino_loss_shape_errors():
    loss = DINOClsTokenLoss(out_dim=4)
    with pytest.raises(ValueError, match='Batch sizes differ'):
        loss(torch.randn(2, 3, 4), torch.rand(2, 5, 4))
    with pytest.raises(ValueError, match='prototypes'):
        loss(torch.randn(2, 3, 5), torch.rand(2, 3, 5))
    with pytest.raises(ValueError, match='out_dim'):
        DINOClsTokenLoss(out_dim=0)
    with pytest.raises(ValueError, match='patch_out_dim'):
        IBOTPatchLoss(patch_out_dim=-1)


def test_sinkhorn_matches_reference_and_rows_sum_to_one():
    torch.manual_seed(0)
    logits = torch.randn(6, 4).clamp(-1, 1)
    loss = DINOClsTokenLoss(out_dim=4)
    probs = loss.sinkhorn_knopp_teacher(logits, teacher_temp=0.1)
    assert probs.shape == (6, 4) and probs.dtype == torch.float32
    np.testing.assert_allclose(probs.numpy(),
                               sinkhorn_reference(logits.numpy(), 0.1, 3),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(6))
    # Many iterations: every prototype receives B / K of the mass.
    balanced = loss.sinkhorn_knopp_teacher(logits, 0.1, n_iterations=200)
    torch.testing.assert_close(balanced.sum(dim=0), torch.full((4, ), 1.5),
                               rtol=1e-4, atol=1e-4)


def test_sinkhorn_shift_invariant_and_no_overflow():
    torch.manual_seed(1)
    logits = torch.randn(5, 3)
    loss = DINOClsTokenLoss(out_dim=3)
    ref = loss.sinkhorn_knopp_teacher(logits, 0.5)
    shifted = loss.sinkhorn_knopp_teacher(logits + 50.0, 0.5)
    torch.testing.assert_close(shifted, ref, rtol=1e-4, atol=1e-6)
    # exp(6 / 0.04) overflows float32 without the max shift.
    bounded = logits.clamp(-1, 1)
    big = loss.sinkhorn_knopp_teacher(bounded + 5.0, 0.04)
    assert torch.isfinite(big).all()
    torch.testing.assert_close(big,
                               loss.sinkhorn_knopp_teacher(bounded, 0.04),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(big.sum(dim=1), torch.ones(5))
    # Scores underflowing to 0 give zeros, never NaN.
    huge = loss.sinkhorn_knopp_teacher(logits * 1000, 0.04)
    assert torch.isfinite(huge).all()


def test_softmax_centering_and_deferred_center_ema():
    loss = DINOClsTokenLoss(out_dim=3, center_momentum=0.9)
    assert torch.equal(loss.center, torch.zeros(1, 3))
    loss.center.copy_(torch.tensor([[1.0, -1.0, 0.5]]))
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0]])
    probs = loss.softmax_center_teacher(logits, teacher_temp=0.5)
    expected = torch.softmax((logits - loss.center) / 0.5, dim=-1)
    torch.testing.assert_close(probs, expected)

    loss.update_center(logits)
    # Deferred as official: nothing changes until the update is applied.
    assert torch.equal(loss.center, torch.tensor([[1.0, -1.0, 0.5]]))
    loss.softmax_center_teacher(logits, 0.5, update_centers=False)
    assert torch.equal(loss.center, torch.tensor([[1.0, -1.0, 0.5]]))
    loss.softmax_center_teacher(logits, 0.5)  # applies it
    mean = torch.tensor([1.0, 0.5, 2.0])
    new_center = 0.9 * torch.tensor([1.0, -1.0, 0.5]) + 0.1 * mean
    torch.testing.assert_close(loss.center, new_center[None])
    loss.apply_center_update()  # nothing pending: no-op
    torch.testing.assert_close(loss.center, new_center[None])
    assert 'center' in loss.state_dict()


def test_ibot_center_is_mean_over_all_tokens():
    loss = IBOTPatchLoss(patch_out_dim=2, center_momentum=0.5)
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0]],
                           [[5.0, 6.0], [7.0, 8.0]]])
    loss.update_center(tokens)  # (B, N, K)
    loss.apply_center_update()
    torch.testing.assert_close(loss.center, torch.tensor([[2.0, 2.5]]))
    loss.update_center(tokens.flatten(0, 1))  # (M, K): same mean
    loss.apply_center_update()
    torch.testing.assert_close(loss.center, torch.tensor([[3.0, 3.75]]))
    loss.update_center(torch.zeros(0, 2))  # no masked patch: kept
    loss.apply_center_update()
    torch.testing.assert_close(loss.center, torch.tensor([[3.0, 3.75]]))
    # (1, K) center broadcasts over masked tokens (M, K).
    assert loss.softmax_center_teacher(torch.randn(7, 2),
                                       0.1).shape == (7, 2)


def test_ibot_sinkhorn_uses_given_count_without_mutating_it():
    torch.manual_seed(2)
    logits = torch.randn(5, 4).clamp(-1, 1)
    n_masked = torch.tensor([5])
    ibot = MODELS.build(dict(type='IBOTPatchLoss', patch_out_dim=4))
    probs = ibot.sinkhorn_knopp_teacher(logits, 0.1, n_masked)
    assert n_masked.item() == 5
    np.testing.assert_allclose(probs.numpy(),
                               sinkhorn_reference(logits.numpy(), 0.1, 3),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(5))
    dino = DINOClsTokenLoss(out_dim=4)
    torch.testing.assert_close(probs, dino.sinkhorn_knopp_teacher(logits,
                                                                  0.1))
    torch.testing.assert_close(ibot.sinkhorn_knopp_teacher(logits, 0.1, 5),
                               probs)


def test_ibot_forward_masked_per_image_weighting():
    torch.manual_seed(3)
    masks = torch.tensor([[True, False, True, False],
                          [False, False, False, False],
                          [False, True, False, False]])  # 2, 0, 1 masked
    student = torch.randn(3, 5)  # rows: (img0, p0), (img0, p2), (img2, p1)
    teacher = torch.softmax(torch.randn(3, 5), dim=-1)
    loss = IBOTPatchLoss(patch_out_dim=5, student_temp=0.2)
    ces = [ce(teacher[i].tolist(), student[i].tolist(), 0.2) for i in range(3)]
    expected = ((ces[0] + ces[1]) / 2 + ces[2] / 1) / 3
    got = loss.forward_masked(student, teacher, masks)
    assert got.item() == pytest.approx(expected, rel=1e-5)

    # Explicit weights (as the official collate's masks_weight) agree.
    weight = torch.tensor([0.5, 0.5, 1.0])
    assert loss.forward_masked(
        student, teacher, masks,
        masks_weight=weight).item() == pytest.approx(expected, rel=1e-5)
    # Padded rows beyond n_masked_patches are ignored.
    padded_s = torch.cat([student, torch.randn(2, 5)])
    padded_t = torch.cat([teacher, torch.softmax(torch.randn(2, 5), -1)])
    assert loss.forward_masked(
        padded_s, padded_t, masks,
        n_masked_patches=3).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match='masked patch'):
        loss.forward_masked(padded_s, padded_t, masks)

    # The full-grid forward gives the same number.
    full_s = torch.randn(3, 4, 5)
    full_t = torch.softmax(torch.randn(3, 4, 5), dim=-1)
    full_s[masks] = student
    full_t[masks] = teacher
    assert loss(full_s, full_t, masks).item() == pytest.approx(expected,
                                                               rel=1e-5)


def test_ibot_loss_backpropagates_to_student_only_rows():
    masks = torch.tensor([[True, True], [False, True]])
    student = torch.randn(3, 4, requires_grad=True)
    teacher = torch.softmax(torch.randn(3, 4), dim=-1)
    IBOTPatchLoss(4).forward_masked(student, teacher, masks).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()


def test_koleo_known_values_and_clustering_increases_loss():
    koleo = MODELS.build(dict(type='KoLeoLoss'))
    assert isinstance(koleo, KoLeoLoss)
    # Four unit vectors at 90 degrees: nearest-neighbour chord sqrt(2).
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert koleo(square * 3.0).item() == pytest.approx(-math.log(math.sqrt(2)),
                                                       abs=1e-6)
    # Two tight pairs (angles 0, 10, 180, 190 degrees): every nearest
    # neighbour is 10 degrees away, chord 2 sin(5 deg); clustering raises
    # the loss.
    angles = torch.deg2rad(torch.tensor([0.0, 10.0, 180.0, 190.0]))
    clustered = torch.stack([angles.cos(), angles.sin()], dim=1)
    chord = 2 * math.sin(math.radians(5))
    value = koleo(clustered).item()
    assert value == pytest.approx(-math.log(chord), abs=1e-5)
    assert value > koleo(square).item()
    # Collinear points (1, 0), (1, 1), (1, 2): after normalisation the
    # nearest neighbours give chords |u_i - u_j|.
    line = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    units = line / line.norm(dim=1, keepdim=True)
    d01 = (units[0] - units[1]).norm().item()
    d12 = (units[1] - units[2]).norm().item()
    expected = -(math.log(d01) + 2 * math.log(d12)) / 3  # d12 < d01
    assert d12 < d01
    assert koleo(line).item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match='B >= 2'):
        koleo(torch.randn(1, 8))


def test_koleo_gradient_spreads_points():
    points = torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0]],
                          requires_grad=True)
    KoLeoLoss()(points).backward()
    # Descending the gradient moves the two close points apart.
    moved = (points - 0.01 * points.grad).detach()
    moved = moved / moved.norm(dim=1, keepdim=True)
    before = points.detach() / points.detach().norm(dim=1, keepdim=True)
    assert (moved[0] - moved[1]).norm() > (before[0] - before[1]).norm()


def gram_reference(out, tgt, img_level, apply_norm=True, remove_neg=False):
    if apply_norm:
        out = out / out.norm(dim=-1, keepdim=True)
        tgt = tgt / tgt.norm(dim=-1, keepdim=True)
    if not img_level:
        out = out.reshape(-1, out.shape[-1])
        tgt = tgt.reshape(-1, tgt.shape[-1])
    g_out = out @ out.transpose(-1, -2)
    g_tgt = tgt @ tgt.transpose(-1, -2)
    if remove_neg:
        g_out, g_tgt = g_out.clamp(min=0), g_tgt.clamp(min=0)
    return ((g_out - g_tgt)**2).mean().item()


@pytest.mark.parametrize('img_level', [True, False])
def test_gram_loss_reference_zero_and_positive(img_level):
    torch.manual_seed(4)
    out, tgt = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    gram = MODELS.build(dict(type='GramLoss'))
    assert isinstance(gram, GramLoss)
    assert gram(tgt, tgt, img_level=img_level).item() == pytest.approx(
        0.0, abs=1e-12)
    # Normalised: scaling the features changes nothing.
    assert gram(tgt * 7.0, tgt, img_level=img_level).item() == pytest.approx(
        0.0, abs=1e-10)
    value = gram(out, tgt, img_level=img_level).item()
    assert value > 0
    assert value == pytest.approx(gram_reference(out, tgt, img_level),
                                  rel=1e-5)
    no_norm = GramLoss(apply_norm=False)(out, tgt, img_level=img_level)
    assert no_norm.item() == pytest.approx(
        gram_reference(out, tgt, img_level, apply_norm=False), rel=1e-5)
    no_neg = GramLoss(remove_neg=True)(out, tgt, img_level=img_level)
    assert no_neg.item() == pytest.approx(
        gram_reference(out, tgt, img_level, remove_neg=True), rel=1e-5)


def test_gram_loss_hand_value_and_options():
    # One image, two patches: cos(out) = 0, cos(tgt) = 1.
    out = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    tgt = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    # Gram matrices [[1, 0], [0, 1]] and [[1, 1], [1, 1]]: MSE 2 / 4.
    assert GramLoss()(out, tgt).item() == pytest.approx(0.5)
    # Teacher-only negatives: the teacher's -1 becomes 0, student kept.
    neg_tgt = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    neg_out = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    assert GramLoss()(neg_out, neg_tgt).item() == pytest.approx(0.0)
    assert GramLoss(remove_neg=True)(neg_out,
                                     neg_tgt).item() == pytest.approx(0.0)
    only_t = GramLoss(remove_only_teacher_neg=True)(neg_out, neg_tgt)
    assert only_t.item() == pytest.approx(2 * 1.0 / 4)
    flat = GramLoss()(out.flatten(0, 1), tgt.flatten(0, 1), img_level=False)
    assert flat.item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match='exclusive'):
        GramLoss(remove_neg=True, remove_only_teacher_neg=True)
    with pytest.raises(ValueError, match='img_level=True'):
        GramLoss()(out[0], tgt[0])
    with pytest.raises(ValueError, match='same shape'):
        GramLoss()(out, tgt[:, :1])


def test_gram_loss_gradient_reaches_student_features():
    out = torch.randn(2, 4, 3, requires_grad=True)
    GramLoss()(out, torch.randn(2, 4, 3)).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
