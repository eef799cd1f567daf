"""Class-token features of a labelled dataloader, for k-NN evaluation.

The weighted k-NN vote of the DINO papers runs on these features
(:func:`~dinov3_mm.evaluation.functional.knn_accuracy`).

Typical use::

    feats, labels = extract_cls_features(backbone, train_loader, preproc)
    val_feats, val_labels = extract_cls_features(backbone, val_loader,
                                                 preproc)
    knn_accuracy(feats, labels, val_feats, val_labels, num_classes=10)
    # {'top1': 93.1, 'top5': 99.2}
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

from dinov3_mm.utils.cpu_bf16 import autocast_or_fp32, parse_dtype
from dinov3_mm.utils.progress import track

__all__ = ['extract_cls_features']


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
        autocast_dtype: Union[None, str, torch.dtype] = None,
        progress: Optional[str] = 'k-NN features') -> Tuple[Tensor, Tensor]:
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
        progress (str, optional): Label of the progress bar over the
            batches (shown on a terminal, see
            :func:`~dinov3_mm.utils.progress.track`); None hides it.

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
    dtype = parse_dtype(autocast_dtype)
    param = next(backbone.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    data_preprocessor = data_preprocessor.to(device)

    modes = {module: module.training for module in backbone.modules()}
    feats, labels = [], []
    backbone.eval()
    try:
        with torch.no_grad():
            batches = (dataloader if progress is None else track(
                dataloader, progress, unit='batch'))
            for data in batches:
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
                with autocast_or_fp32(device.type, dtype, 'k-NN features'):
                    out = _cls_features(backbone, inputs)
                feats.append(out.float().cpu())
    finally:
        for module, mode in modes.items():
            module.training = mode
    if not feats:
        raise ValueError('The dataloader is empty; k-NN needs images.')
    return torch.cat(feats), torch.tensor(labels, dtype=torch.long)
