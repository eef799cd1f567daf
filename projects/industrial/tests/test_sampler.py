"""ClassWeightedSampler on a real ImageFolderDataset of PNG files."""
from collections import Counter

import cv2
import numpy as np
import pytest

import dinov3_mm_industrial.samplers as samplers_module
from dinov3_mm.registry import DATA_SAMPLERS, DATASETS

COUNTS = dict(good=12, scratch=3, blob=1)
CLASSES = ('good', 'scratch', 'blob')


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('imbalanced')
    for name, count in COUNTS.items():
        (root / name).mkdir()
        for i in range(count):
            cv2.imwrite(str(root / name / f'{i}.png'),
                        np.full((8, 8, 3), 40 * i, np.uint8))
    return DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root),
                               classes=CLASSES))


def _build(dataset, **kwargs):
    kwargs.setdefault('seed', 0)
    return DATA_SAMPLERS.build(
        dict(type='ClassWeightedSampler', **kwargs),
        default_args=dict(dataset=dataset))


def _class_share(sampler, dataset):
    labels = [dataset.get_data_info(i)['gt_label'] for i in sampler]
    counts = Counter(labels)
    return [counts[c] / len(labels) for c in range(len(CLASSES))]


def test_inverse_frequency_balances_classes(dataset):
    sampler = _build(dataset, num_samples=6000)
    assert sampler.class_counts == {0: 12, 1: 3, 2: 1}
    assert sampler.class_weights == pytest.approx({0: 1 / 12, 1: 1 / 3,
                                                   2: 1.0})
    # every sample has its class's weight
    expected = [1 / COUNTS[CLASSES[dataset.get_data_info(i)['gt_label']]]
                for i in range(len(dataset))]
    assert sampler.weights.tolist() == pytest.approx(expected)
    assert sampler.expected_class_share() == pytest.approx(
        {0: 1 / 3, 1: 1 / 3, 2: 1 / 3})
    assert len(sampler) == 6000
    share = _class_share(sampler, dataset)
    assert share == pytest.approx([1 / 3] * 3, abs=0.03)
    # the default DataLoader order would give good 75 % of the time
    assert max(share) < 0.4


def test_given_class_weights_by_name_and_list(dataset):
    sampler = _build(dataset, class_weights=dict(good=1, scratch=2),
                     num_samples=3000)
    # per-sample weights: good 1, scratch 2, blob 0 -> shares 12:6:0
    assert sampler.expected_class_share() == pytest.approx(
        {0: 2 / 3, 1: 1 / 3, 2: 0.0})
    share = _class_share(sampler, dataset)
    assert share[2] == 0.0
    assert share[0] == pytest.approx(2 / 3, abs=0.04)
    sampler = _build(dataset, class_weights=[0.0, 0.0, 1.0], num_samples=50)
    blob = [i for i in range(len(dataset))
            if dataset.get_data_info(i)['gt_label'] == 2]
    assert set(sampler) == set(blob) and len(blob) == 1


def test_seeded_and_epoch_aware(dataset):
    a, b = _build(dataset, seed=3), _build(dataset, seed=3)
    assert list(a) == list(b)
    assert list(a) == list(a)  # the same epoch repeats exactly
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(_build(dataset, seed=4)) != first


def test_distributed_ranks_take_disjoint_slices(dataset, monkeypatch):
    full = list(_build(dataset, seed=5, num_samples=9))
    assert len(full) == 9
    parts = []
    for rank in range(2):
        monkeypatch.setattr(samplers_module, 'get_dist_info',
                            lambda rank=rank: (rank, 2))
        sampler = _build(dataset, seed=5, num_samples=9)
        assert len(sampler) == 5  # ceil(9 / 2)
        sampler.set_epoch(2)
        parts.append(list(sampler))
    monkeypatch.setattr(samplers_module, 'get_dist_info', lambda: (0, 1))
    # the global sequence (10 draws, rounded up) interleaved over the ranks
    single = _build(dataset, seed=5, num_samples=10)
    single.set_epoch(2)
    merged = [None] * 10
    merged[0::2], merged[1::2] = parts
    assert merged == list(single)


def test_without_replacement(dataset):
    sampler = _build(dataset, replacement=False)
    assert sorted(sampler) == list(range(16))  # a weighted permutation
    with pytest.raises(ValueError, match='only 15 have one'):
        _build(dataset, replacement=False, class_weights=dict(good=1,
                                                              scratch=1))


def test_errors_name_the_problem(dataset):
    with pytest.raises(ValueError, match="names 'crack'"):
        _build(dataset, class_weights=dict(crack=1))
    with pytest.raises(ValueError, match='give one weight per class'):
        _build(dataset, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match='every sample has weight 0'):
        _build(dataset, class_weights=[0, 0, 0])
    with pytest.raises(ValueError, match='finite and >= 0'):
        _build(dataset, class_weights=[1, -1, 1])
    with pytest.raises(TypeError, match='needs the label'):
        _build(list(range(4)))
