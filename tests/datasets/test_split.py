"""Stratified split: determinism, ratios, class coverage."""
from collections import Counter

import pytest

from dinov3_mm.datasets.split import normalize_split_ratios, stratified_split


def test_deterministic_and_seed_dependent():
    strata = ['a'] * 30 + ['b'] * 10
    first = stratified_split(strata, (0.8, 0.1, 0.1), seed=3)
    assert first == stratified_split(strata, (0.8, 0.1, 0.1), seed=3)
    assert first != stratified_split(strata, (0.8, 0.1, 0.1), seed=4)


def test_every_class_in_every_split_and_ratios():
    strata = ['a'] * 50 + ['b'] * 5 + ['c'] * 3
    splits = stratified_split(strata, (0.8, 0.1, 0.1))
    counts = Counter(zip(splits, strata))
    for cls in 'abc':
        for split in ('train', 'val', 'test'):
            assert counts[(split, cls)] >= 1, (split, cls)
    assert counts[('train', 'a')] == 40
    assert counts[('val', 'a')] == counts[('test', 'a')] == 5


def test_class_too_small_goes_to_largest_split():
    assert stratified_split(['a'], (0.8, 0.1, 0.1)) == ['train']


def test_adding_a_class_keeps_other_assignments():
    base = stratified_split(['a'] * 20, (0.5, 0.5), seed=1)
    more = stratified_split(['a'] * 20 + ['b'] * 7, (0.5, 0.5), seed=1)
    assert more[:20] == base


@pytest.mark.parametrize('bad', [(0.5, 0.2), (1.2, -0.2), dict(dev=1.0),
                                 (0.2, 0.2, 0.2, 0.4)])
def test_bad_ratios(bad):
    with pytest.raises(ValueError, match='split_ratios'):
        normalize_split_ratios(bad)


def test_ratio_forms():
    assert normalize_split_ratios(None) == dict(train=0.8, val=0.1,
                                                test=0.1)
    assert normalize_split_ratios(dict(train=0.7, test=0.3)) == dict(
        train=0.7, test=0.3)
