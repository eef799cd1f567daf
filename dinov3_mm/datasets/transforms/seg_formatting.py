"""Packing a segmentation sample into model inputs and a SegDataSample."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from ...registry import TRANSFORMS
from .formatting import image_to_tensor


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
