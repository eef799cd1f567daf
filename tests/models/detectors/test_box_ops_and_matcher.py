import pytest
import torch

from dinov3_mm.models.detectors.box_ops import (aligned_giou, cxcywh_to_xyxy,
                                                inverse_sigmoid,
                                                pairwise_giou, pairwise_iou,
                                                xyxy_to_cxcywh)
from dinov3_mm.models.detectors.matcher import HungarianMatcher


def test_box_conversions_round_trip():
    xyxy = torch.tensor([[0., 10., 20., 50.], [5., 5., 6., 9.]])
    cxcywh = xyxy_to_cxcywh(xyxy)
    assert cxcywh.tolist() == [[10., 30., 20., 40.], [5.5, 7., 1., 4.]]
    assert torch.equal(cxcywh_to_xyxy(cxcywh), xyxy)
    assert torch.allclose(inverse_sigmoid(torch.tensor([0.5, 0.9])).sigmoid(),
                          torch.tensor([0.5, 0.9]))


def test_iou_and_giou_hand_computed():
    a = torch.tensor([[0., 0., 2., 2.]])
    b = torch.tensor([[1., 1., 3., 3.], [4., 0., 6., 2.], [0., 0., 2., 2.]])
    iou, _ = pairwise_iou(a, b)
    # overlap 1 / union 7; disjoint; identical
    assert torch.allclose(iou, torch.tensor([[1 / 7, 0., 1.]]))
    giou = pairwise_giou(a, b)
    # hull 9, union 7 -> 1/7 - 2/9; hull 12, union 8 -> -4/12
    assert torch.allclose(giou, torch.tensor([[1 / 7 - 2 / 9, -1 / 3, 1.]]))
    iou_a, giou_a = aligned_giou(a.expand(3, 4), b)
    assert torch.allclose(iou_a, iou[0]) and torch.allclose(giou_a, giou[0])


def test_matcher_assigns_each_object_its_closest_confident_query():
    matcher = HungarianMatcher()
    gt_boxes = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.2, 0.2]])
    gt_labels = torch.tensor([1, 0])
    boxes = torch.tensor([[0.7, 0.7, 0.2, 0.2], [0.5, 0.5, 0.3, 0.3],
                          [0.21, 0.2, 0.1, 0.1]])
    logits = torch.full((3, 2), -3.0)
    logits[0, 0] = logits[2, 1] = 3.0
    q, t = matcher(logits, boxes, gt_labels, gt_boxes)
    assert dict(zip(t.tolist(), q.tolist())) == {0: 2, 1: 0}


def test_matcher_without_objects_matches_nothing():
    q, t = HungarianMatcher()(torch.zeros(5, 3), torch.rand(5, 4),
                              torch.zeros(0, dtype=torch.long),
                              torch.zeros(0, 4))
    assert q.numel() == 0 and t.numel() == 0
