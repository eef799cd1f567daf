"""Weighted k-NN classification of backbone features (DINO / DINOv2 / DINOv3).

The protocol of the DINO papers: class-token features are L2-normalised, each
test feature's ``k`` most cosine-similar training features vote for their
class with weight ``exp(similarity / temperature)``, and the votes of a class
are summed. With ``k=20`` and ``temperature=0.07`` (the defaults) this is the
number the papers report as "k-NN".

Typical use::

    feats, labels = extract_cls_features(backbone, train_loader, preproc)
    val_feats, val_labels = extract_cls_features(backbone, val_loader,
                                                 preproc)
    knn_accuracy(feats, labels, val_feats, val_labels, num_classes=10)
    # {'top1': 93.1, 'top5': 99.2}
"""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['knn_classify', 'knn_accuracy', 'extract_cls_features']


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


def _autocast_dtype(dtype: Union[None, str, torch.dtype]
                    ) -> Optional[torch.dtype]:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f'Unknown autocast dtype {dtype!r}; use e.g. '
                         "'bfloat16', 'float16' or None.")
    return resolved


def _pooled(output, backbone: nn.Module) -> Tensor:
    """A ``(B, C)`` feature from a backbone's ``forward`` output."""
    if isinstance(output, (tuple, list)):
        if not output:
            raise ValueError(f'{type(backbone).__name__} returned no output.')
        output = output[-1]
    if isinstance(output, Tensor):
        if output.ndim == 2:
            return output
        if output.ndim == 4:  # (B, C, H, W) feature map: global average
            return output.mean(dim=(2, 3))
    shape = tuple(output.shape) if isinstance(output, Tensor) else \
        type(output).__name__
    raise ValueError(
        f'Cannot get a (B, C) feature from {type(backbone).__name__}: it has '
        "no forward_features(x)['x_norm_clstoken'] and its forward returned "
        f'{shape}. Use a backbone with out_type=\'cls_token\' or a feature '
        'map.')


def _cls_features(backbone: nn.Module, x: Tensor) -> Tensor:
    forward_features = getattr(backbone, 'forward_features', None)
    if callable(forward_features):
        out = forward_features(x)
        if isinstance(out, dict):
            if 'x_norm_clstoken' in out:
                return out['x_norm_clstoken']
            raise ValueError(
                f'{type(backbone).__name__}.forward_features returned keys '
                f"{sorted(out)} without 'x_norm_clstoken'.")
        return _pooled(out, backbone)
    return _pooled(backbone(x), backbone)


def _label(sample, index: int) -> int:
    label = getattr(sample, 'gt_label', None) if sample is not None else None
    if label is None:
        raise ValueError(
            f'Sample {index} of the dataloader has no gt_label; k-NN '
            'evaluation needs a labelled dataset (e.g. ImageFolderDataset '
            'with a PackClsInputs pipeline).')
    label = torch.as_tensor(label).reshape(-1)
    if label.numel() != 1:
        raise ValueError(
            f'Sample {index} has {label.numel()} labels {label.tolist()}; '
            'k-NN evaluation needs exactly one class per image.')
    return int(label.item())


def extract_cls_features(
        backbone: nn.Module,
        dataloader,
        data_preprocessor: Optional[nn.Module],
        autocast_dtype: Union[None, str, torch.dtype] = None
) -> Tuple[Tensor, Tensor]:
    """Class-token features and labels of a labelled dataloader.

    The feature of an image is ``forward_features(x)['x_norm_clstoken']``
    (:class:`~dinov3_mm.models.DINOv3ViT`, and the normalised global average
    of :class:`~dinov3_mm.models.DINOv3ConvNeXt`); a backbone without it
    gives its last ``forward`` output, pooled over space if it is a
    ``(B, C, H, W)`` map. The backbone runs in eval mode without autograd;
    afterwards every submodule gets back its own train / eval flag.

    Args:
        backbone (nn.Module): The feature extractor.
        dataloader: Yields mmengine batches ``dict(inputs=[uint8 CHW, ...],
            data_samples=[DataSample with gt_label, ...])``.
        data_preprocessor (nn.Module, optional): Turns a batch into
            ``dict(inputs=float NCHW, data_samples=...)``, e.g.
            :class:`~dinov3_mm.models.ClsDataPreprocessor`; moved to the
            backbone's device. None builds ``ClsDataPreprocessor`` with the
            LVD-1689M normalisation.
        autocast_dtype (str | torch.dtype, optional): Run the backbone under
            autocast, e.g. ``'bfloat16'`` (also on the CPU). Defaults to None
            (float32).

    Returns:
        tuple: ``features`` float32 ``(N, C)`` and ``labels`` int64 ``(N,)``,
        both on the CPU, in dataloader order.

    Raises:
        ValueError: A sample has no ``gt_label`` (or several), the
            dataloader is empty, or no feature can be read.
    """
    if data_preprocessor is None:
        from dinov3_mm.registry import MODELS
        data_preprocessor = MODELS.build(
            dict(type='ClsDataPreprocessor', normalization='lvd1689m'))
    dtype = _autocast_dtype(autocast_dtype)
    param = next(backbone.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    data_preprocessor = data_preprocessor.to(device)

    modes = {module: module.training for module in backbone.modules()}
    feats, labels = [], []
    backbone.eval()
    try:
        with torch.no_grad():
            for data in dataloader:
                data = data_preprocessor(data, training=False)
                samples = data.get('data_samples')
                inputs = data['inputs']
                if not samples or len(samples) != len(inputs):
                    raise ValueError(
                        'The dataloader yields batches without data_samples '
                        '(labels); k-NN evaluation needs a labelled dataset '
                        '(e.g. ImageFolderDataset with PackClsInputs).')
                for sample in samples:
                    labels.append(_label(sample, len(labels)))
                with torch.autocast(device.type, dtype=dtype or torch.float32,
                                    enabled=dtype is not None):
                    out = _cls_features(backbone, inputs)
                feats.append(out.float().cpu())
    finally:
        for module, mode in modes.items():
            module.training = mode
    if not feats:
        raise ValueError('The dataloader is empty; k-NN needs images.')
    return torch.cat(feats), torch.tensor(labels, dtype=torch.long)
