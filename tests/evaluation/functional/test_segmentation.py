"""Per-class pixel counts of semantic segmentation."""
import pytest
import torch

from dinov3_mm.evaluation.functional import intersect_and_union


def test_all_ignored_and_errors():
    inter, union, ap, al = intersect_and_union(
        torch.tensor([1, 2]), torch.tensor([255, 255]), 3)
    assert inter.sum() == 0 and al.sum() == 0
    with pytest.raises(ValueError, match='outside'):
        intersect_and_union(torch.tensor([0]), torch.tensor([7]), 3)
