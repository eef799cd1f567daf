"""Class-weighted sampling for imbalanced classification data."""
import logging
import math
from typing import Dict, Iterator, List, Optional, Sequence, Sized, Union

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from torch.utils.data import Sampler

from dinov3_mm.registry import DATA_SAMPLERS

ClassWeights = Union[Sequence[float], Dict[Union[str, int], float], None]


def dataset_labels(dataset: Sized) -> List[List[int]]:
    """Class indices of every sample of a classification dataset.

    Uses ``get_cat_ids(i)`` (dinov3_mm and mmpretrain datasets), else the
    ``gt_label`` of ``get_data_info(i)``.

    Raises:
        TypeError: The dataset offers neither.
    """
    if hasattr(dataset, 'get_cat_ids'):
        return [list(map(int, dataset.get_cat_ids(i)))
                for i in range(len(dataset))]
    if hasattr(dataset, 'get_data_info'):
        labels = []
        for i in range(len(dataset)):
            label = dataset.get_data_info(i)['gt_label']
            labels.append([int(v) for v in label] if isinstance(
                label, (list, tuple)) else [int(label)])
        return labels
    raise TypeError(f'{type(dataset).__name__} has neither get_cat_ids() nor '
                    'get_data_info(); ClassWeightedSampler needs the label '
                    'of every sample.')


@DATA_SAMPLERS.register_module()
class ClassWeightedSampler(Sampler):
    """Draw samples with probability proportional to their class's weight.

    By default a class's weight is the inverse of its frequency, so each
    class is drawn equally often on average however rare it is. Explicit
    ``class_weights`` change that balance (e.g. ``good: 1, defect: 4``);
    each sample's probability is its class weight divided by the total
    (for multi-label samples, the largest weight of their classes).

    An epoch draws ``num_samples`` indices with replacement (or without,
    which then needs enough samples of nonzero weight) from a generator
    seeded with ``seed + epoch``: the order is reproducible and changes
    every epoch (``DistSamplerSeedHook`` calls :meth:`set_epoch`). In
    distributed training every rank draws the same global sequence and
    keeps the slice ``rank::world_size``, so ranks see disjoint positions.

    Args:
        dataset (Sized): A classification dataset (``get_cat_ids`` or
            ``get_data_info(i)['gt_label']``).
        class_weights (Sequence[float] | dict, optional): One weight per
            class index, or ``{class name or index: weight}`` (names from
            ``dataset.metainfo['classes']``; unnamed classes get weight 0).
            Defaults to None: inverse class frequency.
        num_samples (int, optional): Indices per epoch over all ranks.
            Defaults to ``len(dataset)``.
        replacement (bool): Draw with replacement. Defaults to True.
        seed (int, optional): Same on every rank; None synchronises a random
            one. Defaults to None.
    """

    def __init__(self,
                 dataset: Sized,
                 class_weights: ClassWeights = None,
                 num_samples: Optional[int] = None,
                 replacement: bool = True,
                 seed: Optional[int] = None) -> None:
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        if len(dataset) == 0:
            raise ValueError('ClassWeightedSampler got an empty dataset.')
        self.labels = dataset_labels(dataset)
        self.class_counts = self._count(self.labels)
        self.class_weights = self._class_weights(class_weights)
        self.weights = self._sample_weights()
        total = len(dataset) if num_samples is None else int(num_samples)
        if total < 1:
            raise ValueError(f'num_samples must be positive, got {total}.')
        self.replacement = replacement
        self.num_samples = math.ceil(total / self.world_size)
        self.total_size = self.num_samples * self.world_size
        nonzero = int((self.weights > 0).sum())
        if not replacement and self.total_size > nonzero:
            raise ValueError(
                f'ClassWeightedSampler: drawing {self.total_size} samples '
                f'without replacement needs as many samples of nonzero '
                f'weight, but only {nonzero} have one; lower num_samples or '
                'set replacement=True.')
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        print_log(
            'ClassWeightedSampler: class counts '
            f'{self._named(self.class_counts)}, expected share per draw '
            f'{self._named(self.expected_class_share(), 3)}',
            logger='current', level=logging.INFO)

    # ------------------------------------------------------------- weights
    @staticmethod
    def _count(labels: List[List[int]]) -> Dict[int, int]:
        counts: Dict[int, int] = {}
        for label in labels:
            for c in label:
                counts[c] = counts.get(c, 0) + 1
        return dict(sorted(counts.items()))

    def _classes(self) -> List[str]:
        meta = getattr(self.dataset, 'metainfo', None) or {}
        return list(meta.get('classes') or [])

    def _named(self, values: Dict[int, float], digits: Optional[int] = None
               ) -> Dict[str, float]:
        names = self._classes()
        return {(names[c] if c < len(names) else str(c)):
                (round(v, digits) if digits else v)
                for c, v in values.items()}

    def _class_weights(self, given: ClassWeights) -> Dict[int, float]:
        if given is None:
            return {c: 1.0 / n for c, n in self.class_counts.items()}
        if isinstance(given, dict):
            names = self._classes()
            weights = {}
            for key, value in given.items():
                if isinstance(key, str):
                    if key not in names:
                        raise ValueError(
                            f'ClassWeightedSampler: class_weights names '
                            f'{key!r}, which is not among the dataset classes '
                            f'{names}.')
                    key = names.index(key)
                weights[int(key)] = float(value)
        else:
            weights = {i: float(w) for i, w in enumerate(given)}
        missing = sorted(set(self.class_counts) - set(weights))
        if missing and not isinstance(given, dict):
            raise ValueError(
                f'ClassWeightedSampler: {len(weights)} class_weights but the '
                f'dataset has labels up to {max(self.class_counts)}; give one '
                'weight per class.')
        if any(w < 0 or not math.isfinite(w) for w in weights.values()):
            raise ValueError(f'class_weights must be finite and >= 0, got '
                             f'{given}.')
        return {c: weights.get(c, 0.0) for c in self.class_counts}

    def _sample_weights(self) -> torch.Tensor:
        weights = torch.tensor(
            [max((self.class_weights[c] for c in label), default=0.0)
             for label in self.labels], dtype=torch.float64)
        if not (weights > 0).any():
            raise ValueError('ClassWeightedSampler: every sample has weight 0;'
                             ' give a positive weight to some class.')
        return weights

    def expected_class_share(self) -> Dict[int, float]:
        """Expected fraction of draws per class (single-label data)."""
        total = float(self.weights.sum())
        share = {c: 0.0 for c in self.class_counts}
        for label, w in zip(self.labels, self.weights.tolist()):
            for c in label:
                share[c] += w / total
        return share

    # ------------------------------------------------------------ sampling
    def __iter__(self) -> Iterator[int]:
        """This rank's indices of the current epoch."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        indices = torch.multinomial(self.weights, self.total_size,
                                    self.replacement, generator=g)
        return iter(indices[self.rank:self.total_size:self.world_size]
                    .tolist())

    def __len__(self) -> int:
        """Indices per rank and epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use a new random stream for ``epoch``."""
        self.epoch = epoch
