"""Pack transforms: a sample dict into model ``inputs`` and a data sample.

:class:`PackClsInputs` (classification), :class:`PackSegInputs`
(segmentation) and :class:`PackMultiCropInputs` (self-supervised
multi-crop views).
"""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from ...registry import TRANSFORMS
from ...structures.data_sample import DataSample


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W[, C])`` array to a contiguous ``(C, H, W)`` tensor."""
    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack an image and its label for a classifier.

    Required Keys:

    - img

    Optional Keys:

    - gt_label (int or list of int)
    - num_classes
    - the ``meta_keys``

    Added Keys:

    - inputs (torch.uint8 ``(C, H, W)``, channel order as loaded: RGB)
    - data_samples (:class:`DataSample`)

    Args:
        meta_keys (sequence[str]): Keys copied into the data sample's
            metainfo when present. Defaults to ``('img_path', 'ori_shape',
            'img_shape', 'scale_factor')``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape',
                                             'img_shape',
                                             'scale_factor')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Return ``dict(inputs=..., data_samples=...)``."""
        sample = DataSample()
        if results.get('gt_label') is not None:
            sample.set_gt_label(results['gt_label'])
        meta = {k: results[k] for k in self.meta_keys if k in results}
        if 'num_classes' in results:
            meta['num_classes'] = results['num_classes']
        sample.set_metainfo(meta)
        return dict(inputs=image_to_tensor(results['img']),
                    data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


@TRANSFORMS.register_module()
class PackSegInputs(BaseTransform):
    """Pack an image and its mask for a segmentor.

    Required Keys:

    - img

    Optional Keys:

    - gt_seg_map (``(H, W)``)
    - the ``meta_keys``

    Added Keys:

    - inputs (torch.uint8 ``(C, H, W)``)
    - data_samples (:class:`mmseg.structures.SegDataSample`, with
      ``gt_sem_seg.data`` a torch.int64 ``(1, H, W)`` tensor when the mask
      is present)

    Args:
        meta_keys (sequence[str]): Keys copied into the metainfo when
            present.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'seg_map_path',
                                             'ori_shape', 'img_shape',
                                             'pad_shape', 'pad_border',
                                             'scale_factor', 'flip',
                                             'reduce_zero_label')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Return ``dict(inputs=..., data_samples=...)``."""
        img = results['img']
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        from mmseg.structures import SegDataSample  # needs mmsegmentation
        sample = SegDataSample()
        seg = results.get('gt_seg_map')
        if seg is not None:
            seg = np.asarray(seg)
            if seg.ndim == 3 and seg.shape[2] == 1:
                seg = seg[..., 0]
            if seg.ndim != 2:
                raise ValueError(f'PackSegInputs: gt_seg_map must be (H, W), '
                                 f'got shape {seg.shape}.')
            data = torch.from_numpy(np.ascontiguousarray(
                seg.astype(np.int64)))[None]
            sample.gt_sem_seg = PixelData(data=data)
        sample.set_metainfo(
            {k: results[k] for k in self.meta_keys if k in results})
        return dict(inputs=image_to_tensor(img), data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


def _stack_crops(crops: Sequence[np.ndarray], name: str,
                 path: str) -> torch.Tensor:
    shapes = {c.shape for c in crops}
    if len(shapes) > 1:
        raise ValueError(f'PackMultiCropInputs: {name} of {path} have '
                         f'different shapes {sorted(shapes)}.')
    return torch.stack([image_to_tensor(c) for c in crops])


@TRANSFORMS.register_module()
class PackMultiCropInputs(BaseTransform):
    """Pack the crops of :class:`DINOMultiCrop` for a DINO-style model.

    Required Keys:

    - global_crops
    - local_crops
    - local_crops_size (only read when there are no local crops)

    Added Keys:

    - inputs: ``dict(global_crops=torch.uint8 (2, 3, G, G),
      local_crops=torch.uint8 (N, 3, L, L))``; ``(0, 3, L, L)`` when
      ``local_crops_number=0``.
    - data_samples (:class:`DataSample` with the ``meta_keys`` present)

    Args:
        meta_keys (sequence[str]): Keys copied into the data sample's
            metainfo when present. Defaults to ``('img_path', 'ori_shape')``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Return ``dict(inputs=dict(...), data_samples=...)``."""
        path = results.get('img_path', 'the image')
        if 'global_crops' not in results or 'local_crops' not in results:
            raise KeyError(f'PackMultiCropInputs: no global_crops/local_crops '
                           f'for {path}; put DINOMultiCrop before it.')
        if not results['global_crops']:
            raise ValueError(
                f'PackMultiCropInputs: no global crop for {path}.')
        global_crops = _stack_crops(results['global_crops'], 'global crops',
                                    path)
        if results['local_crops']:
            local_crops = _stack_crops(results['local_crops'], 'local crops',
                                       path)
        else:
            if 'local_crops_size' not in results:
                raise KeyError('PackMultiCropInputs: no local crop and no '
                               f'local_crops_size for {path}.')
            size = int(results['local_crops_size'])
            local_crops = torch.empty((0, global_crops.shape[1], size, size),
                                      dtype=global_crops.dtype)
        sample = DataSample()
        sample.set_metainfo(
            {k: results[k]
             for k in self.meta_keys if k in results})
        return dict(
            inputs=dict(global_crops=global_crops, local_crops=local_crops),
            data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
