"""Memory bank of normal patch features: subsampling and nearest neighbours.

PatchCore (Roth et al., 2022) keeps the patch features of defect-free images
and scores a test patch by the distance to its nearest stored neighbour.
The bank may be reduced to a fraction of its size at random or by greedy
k-center selection (the coreset), which keeps the outliers of the normal
distribution that random sampling would drop.
"""
import math
from typing import Optional

import torch
from torch import Tensor

SUBSAMPLE_METHODS = ('none', 'random', 'greedy')


def _check_features(features: Tensor, name: str = 'features') -> None:
    if features.ndim != 2:
        raise ValueError(f'{name} must be (N, C), got shape '
                         f'{tuple(features.shape)}.')


def nearest_neighbour_distance(queries: Tensor,
                               bank: Tensor,
                               max_pairs: int = 2**22) -> Tensor:
    """Euclidean distance of every query to its nearest bank entry.

    The ``(queries, bank)`` distance matrix is never held whole: blocks of at
    most ``max_pairs`` distances are computed with :func:`torch.cdist` and
    reduced to a running minimum, so memory stays bounded (``max_pairs`` x 4
    bytes for float32) whatever the sizes.

    Args:
        queries (Tensor): ``(Q, C)`` features.
        bank (Tensor): ``(M, C)`` features, ``M >= 1``.
        max_pairs (int): Largest distance block. Defaults to ``2**22``.

    Returns:
        Tensor: ``(Q,)`` distances, in the dtype of ``queries``.
    """
    _check_features(queries, 'queries')
    _check_features(bank, 'bank')
    if bank.shape[0] == 0:
        raise ValueError('The memory bank is empty; fit the detector on '
                         'normal images first.')
    if queries.shape[1] != bank.shape[1]:
        raise ValueError(f'queries have {queries.shape[1]} channels but the '
                         f'bank has {bank.shape[1]}.')
    if max_pairs < 1:
        raise ValueError(f'max_pairs must be positive, got {max_pairs}.')
    bank_chunk = min(bank.shape[0], max_pairs)
    query_chunk = max(1, max_pairs // bank_chunk)
    out = torch.empty(queries.shape[0], dtype=queries.dtype,
                      device=queries.device)
    for q0 in range(0, queries.shape[0], query_chunk):
        q = queries[q0:q0 + query_chunk]
        best = torch.full((q.shape[0], ), math.inf, dtype=q.dtype,
                          device=q.device)
        for b0 in range(0, bank.shape[0], bank_chunk):
            dist = torch.cdist(q, bank[b0:b0 + bank_chunk])
            best = torch.minimum(best, dist.min(dim=1).values)
        out[q0:q0 + query_chunk] = best
    return out


def random_subsample(features: Tensor, num: int,
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """Indices of ``num`` distinct rows drawn uniformly, sorted."""
    _check_features(features)
    num = min(num, features.shape[0])
    perm = torch.randperm(features.shape[0], generator=generator)
    return perm[:num].sort().values


def greedy_coreset(features: Tensor,
                   num: int,
                   proj_dim: Optional[int] = 128,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Greedy k-center selection of ``num`` rows (the PatchCore coreset).

    Starting from a random row, the row farthest from everything selected so
    far is added until ``num`` rows are chosen. Distances are measured after
    a Gaussian random projection to ``proj_dim`` channels (Johnson-
    Lindenstrauss), which keeps them approximately and makes each step
    cheaper; the returned indices refer to the original rows.

    Args:
        features (Tensor): ``(N, C)`` features.
        num (int): Rows to keep (at most ``N``).
        proj_dim (int, optional): Projection width; None or ``>= C`` uses
            the features as they are. Defaults to 128.
        generator (torch.Generator, optional): Seeds the start row and the
            projection.

    Returns:
        Tensor: ``(num,)`` long indices in selection order.
    """
    _check_features(features)
    n = features.shape[0]
    num = min(num, n)
    if num <= 0:
        return torch.zeros(0, dtype=torch.long)
    x = features.float()
    if proj_dim is not None and proj_dim < x.shape[1]:
        proj = torch.randn(x.shape[1], proj_dim, generator=generator)
        x = x @ (proj.to(x.device) / math.sqrt(proj_dim))
    start = int(torch.randint(n, (1, ), generator=generator))
    selected = torch.empty(num, dtype=torch.long)
    selected[0] = start
    min_dist = torch.cdist(x, x[start:start + 1])[:, 0]
    for i in range(1, num):
        index = int(torch.argmax(min_dist))
        selected[i] = index
        dist = torch.cdist(x, x[index:index + 1])[:, 0]
        min_dist = torch.minimum(min_dist, dist)
    return selected


def subsample_bank(features: Tensor,
                   method: str = 'none',
                   ratio: float = 1.0,
                   proj_dim: Optional[int] = 128,
                   seed: int = 0) -> Tensor:
    """Reduce a memory bank to ``ratio`` of its rows.

    Args:
        features (Tensor): ``(N, C)`` normal patch features.
        method (str): ``'none'`` (keep all), ``'random'`` or ``'greedy'``
            (k-center coreset). Defaults to ``'none'``.
        ratio (float): Fraction to keep, in ``(0, 1]``; at least one row is
            kept. Defaults to 1.
        proj_dim (int, optional): Projection width of the greedy coreset.
        seed (int): Seed of the selection. Defaults to 0.

    Returns:
        Tensor: The kept ``(K, C)`` rows.
    """
    if method not in SUBSAMPLE_METHODS:
        raise ValueError(f'Unknown subsampling method {method!r}; expected '
                         f'one of {SUBSAMPLE_METHODS}.')
    if not 0 < ratio <= 1:
        raise ValueError(f'Subsampling ratio must be in (0, 1], got {ratio}.')
    if method == 'none' or ratio == 1:
        return features
    num = max(1, int(round(ratio * features.shape[0])))
    generator = torch.Generator().manual_seed(seed)
    if method == 'random':
        index = random_subsample(features, num, generator)
    else:
        index = greedy_coreset(features, num, proj_dim, generator)
    return features[index.to(features.device)]
