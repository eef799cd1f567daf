"""Batching of DINO multi-crop inputs: crop-major stacks, normalised."""
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.model import ImgDataPreprocessor
from torch import Tensor

from dinov3_mm.registry import MODELS
from ..normalization import resolve_mean_std


def _is_multicrop(inputs: Any) -> bool:
    if isinstance(inputs, Mapping):
        return 'global_crops' in inputs
    return (isinstance(inputs, (list, tuple)) and len(inputs) > 0
            and isinstance(inputs[0], Mapping))


def _per_image(inputs: Any, key: str) -> Any:
    """The ``key`` crops of every image: a list, or a ``(B, n, ...)`` tensor.

    Accepts a list of per-image dicts (no collation), a dict of lists
    (mmengine's ``pseudo_collate``) and a dict of stacked tensors (PyTorch /
    mmengine ``default_collate``).
    """
    if isinstance(inputs, Mapping):
        if key not in inputs:
            raise KeyError(f'SSLDataPreprocessor: inputs have no {key!r}; '
                           'expected the output of PackMultiCropInputs.')
        return inputs[key]
    missing = [i for i, item in enumerate(inputs) if key not in item]
    if missing:
        raise KeyError(f'SSLDataPreprocessor: inputs {missing} of the batch '
                       f'have no {key!r}; expected the output of '
                       'PackMultiCropInputs.')
    return [item[key] for item in inputs]


def _crop_major(crops: Any, key: str) -> Tuple[Tensor, int, int]:
    """``(n * B, C, H, W)`` with row ``crop * B + image``; n and B."""
    if isinstance(crops, Tensor):
        if crops.ndim != 5:
            raise ValueError(f'SSLDataPreprocessor: stacked {key} must be '
                             f'(B, n, C, H, W); got {tuple(crops.shape)}.')
        stacked = crops.transpose(0, 1)
    else:
        crops = list(crops)
        if not crops:
            raise ValueError('SSLDataPreprocessor: empty batch.')
        shapes = [tuple(c.shape) for c in crops]
        if len(set(shapes)) > 1 or len(shapes[0]) != 4:
            raise ValueError(
                f'SSLDataPreprocessor: every image needs {key} of the same '
                f'(n, C, H, W) shape; got {shapes}. Use the same '
                'DINOMultiCrop settings for the whole dataset.')
        stacked = torch.stack(crops, dim=1)  # (n, B, C, H, W)
    n, batch = stacked.shape[:2]
    return stacked.reshape(n * batch, *stacked.shape[2:]), n, batch


@MODELS.register_module()
class SSLDataPreprocessor(ImgDataPreprocessor):
    """Stack and normalise the crops of a DINO multi-crop batch.

    Multi-crop batches (``inputs`` from :class:`PackMultiCropInputs`: a list
    of per-image dicts, or the dict of lists made by mmengine's
    ``pseudo_collate``, or the dict of ``(B, n, C, H, W)`` tensors made by
    ``default_collate``) become::

        dict(inputs=dict(
                 global_crops=float (n_global * B, 3, G, G),
                 local_crops=float (n_local * B, 3, L, L),
                 n_global=n_global, n_local=n_local, batch_size=B),
             data_samples=[...])

    Both stacks are **crop-major**, as the official ``collate_data_and_cast``:
    row ``crop * B + image``, so ``x.unflatten(0, (n, B))`` recovers the
    crops of each image; ``local_crops`` is ``(0, 3, L, L)`` without local
    crops.

    Plain batches (``inputs`` a list of ``(3, H, W)`` tensors or an
    ``(B, 3, H, W)`` tensor, e.g. a labelled dataset for k-NN evaluation)
    are normalised and stacked into ``inputs`` ``(B, 3, H, W)`` like
    :class:`ClsDataPreprocessor`, except that they are not padded: all
    images of a batch must have the same size (resize them in the pipeline).

    Data are moved to the model's device before the float conversion, so
    uint8 pixels cross the bus.

    Args:
        normalization (str, optional): ``'lvd1689m'`` (web weights, the
            ImageNet statistics) or ``'sat493m'`` (satellite weights);
            ignored when ``mean`` and ``std`` are given. None with no
            ``mean``/``std`` only converts to float. Defaults to
            ``'lvd1689m'``.
        mean (Sequence[float], optional): Per-channel mean, 0-255 scale.
        std (Sequence[float], optional): Per-channel std, 0-255 scale.
        to_rgb (bool): Swap the channel order (for BGR inputs).
            Defaults to False.
        non_blocking (bool): Asynchronous host-to-device copies.
            Defaults to False.
    """

    def __init__(self,
                 normalization: Optional[str] = 'lvd1689m',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 to_rgb: bool = False,
                 non_blocking: bool = False):
        mean, std = resolve_mean_std(normalization, mean, std)
        super().__init__(
            mean=mean, std=std, bgr_to_rgb=to_rgb, non_blocking=non_blocking)
        self.normalization = normalization if mean is not None else None

    def normalize(self, images: Tensor) -> Tensor:
        """Float ``(N, C, H, W)``: channel swap and ``(x - mean) / std``."""
        if images.ndim != 4:
            raise ValueError('SSLDataPreprocessor: expected (N, C, H, W) '
                             f'images; got {tuple(images.shape)}.')
        images = images.float()
        if self._channel_conversion:
            if images.shape[1] != 3:
                raise ValueError('to_rgb needs 3-channel images; got '
                                 f'{images.shape[1]} channels.')
            images = images[:, [2, 1, 0]]
        if self._enable_normalize:
            if self.mean.shape[0] not in (1, images.shape[1]):
                raise ValueError(
                    f'SSLDataPreprocessor: images have {images.shape[1]} '
                    f'channels but mean/std {self.mean.shape[0]}.')
            images = (images - self.mean) / self.std
        return images

    def forward(self, data: dict, training: bool = False) -> dict:
        """Batch ``data`` (see the class docstring); ``training`` is unused.

        Returns:
            dict: ``inputs`` (a dict for multi-crop data, a float NCHW
            tensor otherwise) and ``data_samples``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        if _is_multicrop(inputs):
            inputs = self._multicrop(inputs)
        else:
            inputs = self.normalize(self._stack_plain(inputs))
        return dict(inputs=inputs, data_samples=data.get('data_samples'))

    def _multicrop(self, inputs: Any) -> dict:
        global_crops, n_global, batch = _crop_major(
            _per_image(inputs, 'global_crops'), 'global_crops')
        local_crops, n_local, local_batch = _crop_major(
            _per_image(inputs, 'local_crops'), 'local_crops')
        if local_batch != batch:
            raise ValueError(f'SSLDataPreprocessor: {batch} images with '
                             f'global crops but {local_batch} with local '
                             'crops.')
        return dict(
            global_crops=self.normalize(global_crops),
            local_crops=self.normalize(local_crops),
            n_global=n_global,
            n_local=n_local,
            batch_size=batch)

    @staticmethod
    def _stack_plain(inputs: Any) -> Tensor:
        if isinstance(inputs, Tensor):
            return inputs
        images: List[Tensor] = list(inputs)
        if not images:
            raise ValueError('SSLDataPreprocessor: empty batch.')
        shapes = [tuple(i.shape) for i in images]
        if len(set(shapes)) > 1:
            raise ValueError(
                'SSLDataPreprocessor: images of a plain batch must have the '
                f'same (C, H, W) size (no padding is done); got {shapes}. '
                'Resize them in the pipeline, or use ClsDataPreprocessor.')
        return torch.stack(images)
