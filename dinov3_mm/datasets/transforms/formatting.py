"""Packing a sample into model inputs and a data sample."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

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
