"""Deterministic stratified train/val/test splits."""
import zlib
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

SPLIT_NAMES = ('train', 'val', 'test')
DEFAULT_SPLIT_RATIOS = (0.8, 0.1, 0.1)

RatiosType = Union[Sequence[float], Mapping[str, float], None]


def normalize_split_ratios(ratios: RatiosType) -> Dict[str, float]:
    """Turn ``(train, val[, test])`` or a ``{split: ratio}`` dict into a dict.

    Args:
        ratios (sequence | dict | None): Fractions per split; ``None`` means
            :data:`DEFAULT_SPLIT_RATIOS`. A sequence is read in the order
            ``train, val, test``.

    Raises:
        ValueError: When a ratio is negative, a split name is unknown or the
            ratios do not sum to 1.
    """
    if ratios is None:
        ratios = DEFAULT_SPLIT_RATIOS
    if isinstance(ratios, Mapping):
        result = {str(k): float(v) for k, v in ratios.items()}
    else:
        ratios = list(ratios)
        if not 1 <= len(ratios) <= len(SPLIT_NAMES):
            raise ValueError(
                f'split_ratios {ratios} must have 1 to {len(SPLIT_NAMES)} '
                f'entries, in the order {SPLIT_NAMES}.')
        result = dict(zip(SPLIT_NAMES, (float(r) for r in ratios)))
    unknown = sorted(set(result) - set(SPLIT_NAMES))
    if unknown:
        raise ValueError(f'split_ratios names unknown splits {unknown}; '
                         f'use {SPLIT_NAMES}.')
    if any(r < 0 for r in result.values()):
        raise ValueError(f'split_ratios {result} has a negative ratio.')
    total = sum(result.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f'split_ratios {result} sum to {total:g}; they must '
                         'sum to 1.')
    return result


def _split_counts(num: int, ratios: Dict[str, float]) -> Dict[str, int]:
    """Largest-remainder allocation; each used split gets one when possible."""
    names = [n for n in SPLIT_NAMES if ratios.get(n, 0) > 0]
    exact = {n: num * ratios[n] for n in names}
    counts = {n: int(np.floor(exact[n])) for n in names}
    by_remainder = sorted(names, key=lambda n: (counts[n] - exact[n],
                                                SPLIT_NAMES.index(n)))
    for name in by_remainder[:num - sum(counts.values())]:
        counts[name] += 1
    if num >= len(names):
        for name in names:
            if counts[name] == 0:
                donor = max(names, key=lambda n: counts[n])
                counts[donor] -= 1
                counts[name] = 1
    return counts


def stratified_split(strata: Sequence, ratios: RatiosType = None,
                     seed: int = 0) -> List[str]:
    """Assign every sample to a split, class by class.

    Each stratum (class) is shuffled with a generator seeded by ``seed`` and
    the stratum's name, so the result depends only on the samples' order,
    their strata, the ratios and the seed. Every split with a positive ratio
    receives at least one sample of a stratum that has at least as many
    samples as there are such splits.

    Args:
        strata (sequence): The stratum (usually the class) of each sample.
            Callers should pass samples in a stable order (e.g. sorted paths).
        ratios (sequence | dict | None): See :func:`normalize_split_ratios`.
        seed (int): Seed of the shuffle. Defaults to 0.

    Returns:
        list[str]: The split name of each sample.
    """
    ratios = normalize_split_ratios(ratios)
    groups: Dict[str, List[int]] = {}
    for index, stratum in enumerate(strata):
        groups.setdefault(str(stratum), []).append(index)
    assignment: List[Optional[str]] = [None] * len(strata)
    for stratum, indices in sorted(groups.items()):
        key = zlib.crc32(stratum.encode('utf-8'))
        rng = np.random.default_rng([seed, key])
        order = [indices[i] for i in rng.permutation(len(indices))]
        start = 0
        for name, count in _split_counts(len(order), ratios).items():
            for index in order[start:start + count]:
                assignment[index] = name
            start += count
    return assignment  # type: ignore[return-value]


def split_summary(splits: Sequence[str],
                  strata: Sequence) -> Dict[Tuple[str, str], int]:
    """Count samples per ``(split, stratum)``; handy in tests and reports."""
    counts: Dict[Tuple[str, str], int] = {}
    for split, stratum in zip(splits, strata):
        key = (split, str(stratum))
        counts[key] = counts.get(key, 0) + 1
    return counts
