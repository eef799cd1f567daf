import torch

from dinov3_mm.models.detectors.losses import (box_losses, iou_aware_bce,
                                               mask_losses, point_sample)


def test_box_losses_zero_for_exact_boxes_and_count_normalised():
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.2]])
    l1, giou, iou = box_losses(boxes, boxes.clone(), num_boxes=2)
    assert float(l1) == 0 and abs(float(giou)) < 1e-6
    assert torch.allclose(iou, torch.ones(2))
    shifted = boxes + torch.tensor([0.1, 0., 0., 0.])
    l1, _, _ = box_losses(shifted, boxes, num_boxes=4)
    assert abs(float(l1) - 0.2 / 4) < 1e-6


def test_iou_aware_bce_prefers_confident_matched_query():
    logits = torch.full((4, 3), -4.0)
    query, label = torch.tensor([1]), torch.tensor([2])
    good = logits.clone()
    good[1, 2] = 4.0
    loss_bad = iou_aware_bce(logits, query, label, torch.ones(1), 1)
    loss_good = iou_aware_bce(good, query, label, torch.ones(1), 1)
    assert loss_good < loss_bad
    # a confident negative costs more than a shy one
    wrong = logits.clone()
    wrong[0, 0] = 4.0
    assert iou_aware_bce(wrong, query, label, torch.ones(1), 1) > loss_bad


def test_point_sample_reads_pixel_centres():
    maps = torch.arange(16.).reshape(1, 1, 4, 4)
    points = torch.tensor([[[0.125, 0.125], [0.875, 0.375]]])
    assert point_sample(maps, points).tolist() == [[0.0, 7.0]]


def test_mask_losses_small_for_right_mask_large_for_wrong():
    torch.manual_seed(0)
    gt = torch.zeros(1, 64, 64)
    gt[:, 16:48, 8:40] = 1
    right = (gt[:, ::4, ::4] * 2 - 1) * 20
    ce_r, dice_r = mask_losses(right, gt, 1, num_points=256)
    ce_w, dice_w = mask_losses(-right, gt, 1, num_points=256)
    assert float(dice_r) < 0.1 < 0.9 < float(dice_w)
    assert float(ce_r) < float(ce_w)
    zero_ce, zero_dice = mask_losses(torch.zeros(0, 16, 16),
                                     torch.zeros(0, 64, 64), 1)
    assert float(zero_ce) == 0 == float(zero_dice)
