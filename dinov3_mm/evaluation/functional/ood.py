"""Out-of-distribution scores and their detection metrics.

Every score is oriented the same way: **higher means more in-distribution**
(ID). A detector flags an image as out-of-distribution (OOD) when its score
falls below a threshold.

Scores of a classifier's logits ``z`` (``K`` classes):

* ``msp``: maximum softmax probability ``max_k softmax(z)_k``
  (Hendrycks & Gimpel, 2017).
* ``max_logit``: ``max_k z_k`` (Hendrycks et al., 2022).
* ``energy``: minus the free energy ``E(z) = -T logsumexp(z / T)`` (Liu et
  al., 2020), i.e. ``T logsumexp(z / T)``, with ``T = 1`` by default: low
  energy (a high score) is in-distribution.

Scores of features ``f`` (the classifier's pooled feature, the input of its
last layers):

* ``knn``: minus the cosine distance ``1 - cos(f, f_k)`` to the ``k``-th
  nearest training feature (Sun et al., 2022, who use the Euclidean distance
  of L2-normalised features, ``sqrt(2 - 2 cos)``: the same order).
* ``mahalanobis``: minus the smallest squared Mahalanobis distance
  ``(f - mu_c)^T S^-1 (f - mu_c)`` to a class mean ``mu_c``, with one
  covariance ``S`` shared by the classes, fitted on the training features
  (Lee et al., 2018).

Metrics, with ID as the positive class: AUROC (ties count one half), FPR at
95 % TPR (the share of OOD images kept by the threshold that keeps 95 % of the
ID images), AUPR-In (average precision of ID) and AUPR-Out (average
precision of OOD as the positive class, scores negated).
"""
import math
from typing import Dict

import torch
from torch import Tensor

from .classification import (ArrayLike, as_tensor, average_precision,
                             binary_auroc)

LOGIT_SCORES = ('msp', 'max_logit', 'energy')
FEATURE_SCORES = ('knn', 'mahalanobis')
#: Every score, in report order.
OOD_SCORES = LOGIT_SCORES + FEATURE_SCORES
#: Query rows compared with the training features at once by ``knn_score``.
KNN_CHUNK = 1024


def logit_score(logits: ArrayLike, name: str,
                temperature: float = 1.0) -> Tensor:
    """``msp``, ``max_logit`` or ``energy`` of ``(N, K)`` logits.

    Args:
        logits (Tensor | ndarray): ``(N, K)`` logits.
        name (str): One of :data:`LOGIT_SCORES`.
        temperature (float): ``T`` of ``energy``. Defaults to 1.

    Returns:
        Tensor: ``(N,)`` float64 scores, higher = more in-distribution.

    Raises:
        ValueError: Unknown score name, or logits that are not 2-D.
    """
    if name not in LOGIT_SCORES:
        raise ValueError(f'Unknown logit score {name!r}; use one of '
                         f'{LOGIT_SCORES}.')
    logits = as_tensor(logits, torch.float64)
    if logits.ndim != 2:
        raise ValueError(f'Logits must be (N, K), got shape '
                         f'{tuple(logits.shape)}.')
    if name == 'msp':
        return logits.softmax(-1).amax(-1)
    if name == 'max_logit':
        return logits.amax(-1)
    return temperature * torch.logsumexp(logits / temperature, -1)


def knn_score(train_features: ArrayLike, features: ArrayLike, k: int = 10,
              exclude_self: bool = False) -> Tensor:
    """Minus the cosine distance to the ``k``-th nearest training feature.

    Both sets are L2-normalised first.

    Args:
        train_features (Tensor | ndarray): ``(M, C)`` reference features.
        features (Tensor | ndarray): ``(N, C)`` features to score.
        k (int): Which neighbour. Defaults to 10.
        exclude_self (bool): ``features`` are ``train_features`` themselves:
            skip each one's own match. Defaults to False.

    Returns:
        Tensor: ``(N,)`` float64 scores in ``[-2, 0]``.

    Raises:
        ValueError: Fewer than ``k`` training features, or feature widths
            that differ.
    """
    train = torch.nn.functional.normalize(
        as_tensor(train_features, torch.float64), dim=-1)
    query = torch.nn.functional.normalize(
        as_tensor(features, torch.float64), dim=-1)
    if train.shape[-1] != query.shape[-1]:
        raise ValueError(f'Features of width {query.shape[-1]} cannot be '
                         f'compared with training features of width '
                         f'{train.shape[-1]}.')
    k_eff = k + int(exclude_self)
    if not 1 <= k_eff <= train.shape[0]:
        raise ValueError(f'k={k} needs at least {k_eff} training features, '
                         f'got {train.shape[0]}; lower k.')
    kth = [(chunk @ train.T).topk(k_eff, dim=-1).values[:, -1]
           for chunk in query.split(KNN_CHUNK)]
    return (torch.cat(kth) if kth else query.new_zeros(0)) - 1.0


def fit_mahalanobis(train_features: ArrayLike, train_labels: ArrayLike,
                    eps: float = 1e-6) -> Dict[str, Tensor]:
    """Class means and the shared precision matrix of training features.

    The covariance is that of the features around their class means (pooled
    over the classes); ``eps`` times its mean variance is added to the
    diagonal before the (pseudo-)inverse, so degenerate directions (fewer
    images than channels) stay finite.

    Args:
        train_features (Tensor | ndarray): ``(M, C)`` features.
        train_labels (Tensor | ndarray): ``(M,)`` class indices.
        eps (float): Relative ridge. Defaults to 1e-6.

    Returns:
        dict: ``means`` ``(K, C)`` (one row per class present, sorted) and
        ``precision`` ``(C, C)``, float64.

    Raises:
        ValueError: Labels and features differ in number.
    """
    feats = as_tensor(train_features, torch.float64)
    labels = as_tensor(train_labels).long().reshape(-1)
    if len(labels) != len(feats) or not len(feats):
        raise ValueError(f'Mahalanobis needs one label per training feature, '
                         f'got {len(labels)} labels for {len(feats)} '
                         'features.')
    classes = labels.unique()
    means = torch.stack([feats[labels == c].mean(0) for c in classes])
    centred = feats - means[torch.searchsorted(classes, labels)]
    cov = centred.T @ centred / len(feats)
    ridge = eps * max(cov.diagonal().mean().item(), 1e-12)
    cov += ridge * torch.eye(cov.shape[0], dtype=cov.dtype)
    return dict(means=means, precision=torch.linalg.pinv(cov,
                                                         hermitian=True))


def mahalanobis_score(fitted: Dict[str, Tensor],
                      features: ArrayLike) -> Tensor:
    """Minus the smallest squared Mahalanobis distance to a class mean.

    Args:
        fitted (dict): From :func:`fit_mahalanobis`.
        features (Tensor | ndarray): ``(N, C)`` features.

    Returns:
        Tensor: ``(N,)`` float64 scores, at most 0.
    """
    feats = as_tensor(features, torch.float64)
    dists = []
    for mean in fitted['means']:
        diff = feats - mean
        dists.append(((diff @ fitted['precision']) * diff).sum(-1))
    return -torch.stack(dists, -1).amin(-1)


def threshold_at_tpr(id_scores: ArrayLike, tpr: float = 0.95) -> float:
    """The largest threshold ``t`` with ``score >= t`` for at least ``tpr``
    of the in-distribution scores.

    Raises:
        ValueError: No scores, or ``tpr`` outside ``(0, 1]``.
    """
    if not 0 < tpr <= 1:
        raise ValueError(f'tpr must be in (0, 1], got {tpr}.')
    ordered = as_tensor(id_scores, torch.float64).reshape(-1).sort(
        descending=True).values
    if not len(ordered):
        raise ValueError('No in-distribution scores to set a threshold on.')
    needed = max(math.ceil(tpr * len(ordered) - 1e-9), 1)
    return ordered[needed - 1].item()


def fpr_at_tpr(id_scores: ArrayLike, ood_scores: ArrayLike,
               tpr: float = 0.95) -> float:
    """Share of OOD scores kept (``>=``) by :func:`threshold_at_tpr`."""
    ood_scores = as_tensor(ood_scores, torch.float64).reshape(-1)
    return (ood_scores >= threshold_at_tpr(id_scores, tpr)).double().mean(
    ).item()


def fpr_key(tpr: float) -> str:
    """The name of the FPR entry of :func:`ood_metrics`, e.g.
    ``'fpr@95tpr'``."""
    return f'fpr@{round(100 * tpr)}tpr'


def ood_metrics(id_scores: ArrayLike, ood_scores: ArrayLike,
                tpr: float = 0.95) -> Dict[str, float]:
    """AUROC, FPR at ``tpr`` TPR, AUPR-In and AUPR-Out, in percent.

    Args:
        id_scores (Tensor | ndarray): ``(N,)`` scores of in-distribution
            images (the positives).
        ood_scores (Tensor | ndarray): ``(M,)`` scores of OOD images.
        tpr (float): The TPR of the FPR figure. Defaults to 0.95.

    Returns:
        dict: ``auroc``, ``fpr@95tpr`` (see :func:`fpr_key`), ``aupr_in``
        and ``aupr_out``.

    Raises:
        ValueError: One of the sets is empty.
    """
    id_scores = as_tensor(id_scores, torch.float64).reshape(-1)
    ood_scores = as_tensor(ood_scores, torch.float64).reshape(-1)
    if not len(id_scores) or not len(ood_scores):
        raise ValueError('OOD metrics need in-distribution and OOD scores; '
                         f'got {len(id_scores)} and {len(ood_scores)}.')
    scores = torch.cat([id_scores, ood_scores])
    is_id = torch.cat([torch.ones(len(id_scores)),
                       torch.zeros(len(ood_scores))])
    return {
        'auroc': 100 * binary_auroc(scores, is_id),
        fpr_key(tpr): 100 * fpr_at_tpr(id_scores, ood_scores, tpr),
        'aupr_in': 100 * average_precision(scores, is_id),
        'aupr_out': 100 * average_precision(-scores, 1 - is_id),
    }
