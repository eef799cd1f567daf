"""Corruption-sweep summaries against values computed by hand."""
import pytest

from dinov3_mm.evaluation.functional.robustness import (corruption_errors,
                                                        summarise_sweep)

TABLE = {'fog': {1: 80.0, 2: 60.0}, 'snow': {1: 90.0, 2: 70.0}}
BASE = {'fog': {1: 60.0, 2: 40.0}, 'snow': {1: 90.0, 2: 70.0},
        'frost': {1: 50.0, 2: 50.0}}


def test_summary_by_hand():
    got = summarise_sweep(90.0, TABLE, BASE)
    assert got['per_corruption'] == {'fog': 70.0, 'snow': 80.0}
    assert got['mean_corrupted'] == pytest.approx(75.0)
    assert got['relative_robustness'] == pytest.approx(75 / 90)
    # fog: errors (20 + 40) / (40 + 60); snow: (10 + 30) / (10 + 30)
    assert got['corruption_errors'] == pytest.approx({'fog': 60.0,
                                                      'snow': 100.0})
    assert got['mce'] == pytest.approx(80.0)
    assert 'mce' not in summarise_sweep(90.0, TABLE)


def test_baseline_without_shared_corruptions_or_errors():
    with pytest.raises(ValueError, match='none of the corruptions'):
        corruption_errors(TABLE, {'frost': {1: 50.0}})
    with pytest.raises(ValueError, match='no error on fog'):
        corruption_errors({'fog': {1: 50.0}}, {'fog': {1: 100.0}})
