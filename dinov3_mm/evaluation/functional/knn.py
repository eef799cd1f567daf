"""Weighted k-NN classification of features (DINO / DINOv2 / DINOv3).

The protocol of the DINO papers: features are L2-normalised, each test
feature's ``k`` most cosine-similar training features vote for their class
with weight ``exp(similarity / temperature)``, and the votes of a class are
summed. With ``k=20`` and ``temperature=0.07`` (the defaults) this is the
number the papers report as "k-NN". The features come from
:func:`~dinov3_mm.evaluation.knn.extract_cls_features`.
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_features(name: str, features: Tensor) -> None:
    if not isinstance(features, Tensor) or features.ndim != 2:
        shape = tuple(features.shape) if isinstance(features, Tensor) else \
            type(features).__name__
        raise ValueError(f'{name} must be an (N, C) tensor, got {shape}.')


def _check_labels(name: str, labels: Tensor, n: int,
                  num_classes: Optional[int] = None) -> None:
    if not isinstance(labels, Tensor) or labels.ndim != 1 or \
            labels.numel() != n:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else \
            type(labels).__name__
        raise ValueError(f'{name} must be a 1-D tensor of {n} class indices '
                         f'(one per feature row), got {shape}.')
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f'{name} must hold integer class indices, got '
                         f'dtype {labels.dtype}.')
    if num_classes is not None and n and (labels.min() < 0
                                          or labels.max() >= num_classes):
        raise ValueError(
            f'{name} holds indices in [{int(labels.min())}, '
            f'{int(labels.max())}], outside [0, {num_classes}); check '
            'num_classes.')


def knn_classify(train_features: Tensor,
                 train_labels: Tensor,
                 test_features: Tensor,
                 num_classes: int,
                 k: int = 20,
                 temperature: float = 0.07,
                 chunk_size: int = 256) -> Tensor:
    """Class scores of the weighted k-NN vote.

    For a test feature ``q`` and training features ``x_i`` (both
    L2-normalised here), with ``N_k(q)`` the ``k`` training rows of highest
    cosine similarity ``s_i = q . x_i``::

        score[c] = sum_{i in N_k(q), y_i = c} exp(s_i / temperature)

    Computed in float32 on the device of ``train_features``, ``chunk_size``
    test rows at a time, so the similarity matrix held at once is at most
    ``chunk_size x n_train``.

    Args:
        train_features (Tensor): ``(n_train, C)`` features of the labelled
            reference set.
        train_labels (Tensor): ``(n_train,)`` integer class indices.
        test_features (Tensor): ``(n_test, C)`` features to classify.
        num_classes (int): Number of classes.
        k (int): Neighbours per test feature; capped at ``n_train``.
            Defaults to 20.
        temperature (float): Softness of the vote weights. Defaults to 0.07.
        chunk_size (int): Test rows per similarity block. Defaults to 256.

    Returns:
        Tensor: ``(n_test, num_classes)`` float32 scores (unnormalised sums
        of weights; argmax is the prediction).
    """
    _check_features('train_features', train_features)
    _check_features('test_features', test_features)
    if train_features.shape[0] == 0:
        raise ValueError('k-NN needs at least one training feature.')
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f'train_features have {train_features.shape[1]} channels but '
            f'test_features {test_features.shape[1]}; extract both with the '
            'same backbone.')
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}.')
    _check_labels('train_labels', train_labels, train_features.shape[0],
                  num_classes)
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}.')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}.')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}.')

    device = train_features.device
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(device=device, dtype=torch.long)
    k = min(k, train.shape[0])
    out = []
    for start in range(0, test_features.shape[0], chunk_size):
        query = F.normalize(
            test_features[start:start + chunk_size].to(device).float(), dim=1)
        sims, idx = (query @ train.T).topk(k, dim=1)
        weights = (sims / temperature).exp()
        scores = torch.zeros(query.shape[0], num_classes, device=device)
        out.append(scores.scatter_add_(1, labels[idx], weights))
    if not out:
        return torch.zeros(0, num_classes, device=device)
    return torch.cat(out)


def knn_accuracy(train_features: Tensor,
                 train_labels: Tensor,
                 test_features: Tensor,
                 test_labels: Tensor,
                 num_classes: int,
                 k: int = 20,
                 temperature: float = 0.07) -> Dict[str, float]:
    """Top-1 (and top-5) accuracy of :func:`knn_classify`, in percent.

    Args:
        train_features, train_labels, test_features: As for
            :func:`knn_classify`.
        test_labels (Tensor): ``(n_test,)`` integer class indices.
        num_classes (int): Number of classes.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.

    Returns:
        dict: ``top1`` and, when ``num_classes >= 5``, ``top5`` (floats in
        [0, 100]). Ties in the scores go to the lower class index; a class
        that got no vote (score 0) never counts as a top-5 hit.
    """
    _check_features('test_features', test_features)
    _check_labels('test_labels', test_labels, test_features.shape[0],
                  num_classes)
    if test_features.shape[0] == 0:
        raise ValueError('k-NN accuracy needs at least one test feature.')
    scores = knn_classify(train_features, train_labels, test_features,
                          num_classes, k=k, temperature=temperature)
    target = test_labels.to(scores.device, torch.long)
    # a stable descending sort: among equal scores the lower index wins
    ranked = scores.sort(dim=1, descending=True, stable=True).indices
    n = target.numel()
    result = {'top1': (ranked[:, 0] == target).sum().item() * 100.0 / n}
    if num_classes >= 5:
        # a class no neighbour voted for is never a hit, whatever the tie
        # order among the zero scores
        voted = scores.gather(1, target[:, None])[:, 0] > 0
        hit5 = (ranked[:, :5] == target[:, None]).any(dim=1) & voted
        result['top5'] = hit5.sum().item() * 100.0 / n
    return result
