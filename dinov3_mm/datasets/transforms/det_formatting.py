"""Pack a detection sample into model ``inputs`` and a DetDataSample."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from ...registry import TRANSFORMS
from ...structures.det_data_sample import DetDataSample
from .formatting import image_to_tensor

DET_META_KEYS = ('img_path', 'img_id', 'ori_shape', 'img_shape',
                 'scale_factor', 'border', 'flip', 'flip_direction',
                 'ori_gt', 'classes')


@TRANSFORMS.register_module()
class PackDetInputs(BaseTransform):
    """Pack an image and its objects for a detector.

    Crowd objects (``gt_ignore_flags``) are left out of ``gt_instances``;
    they stay in ``metainfo['ori_gt']`` for evaluation.

    Required Keys:

    - img

    Optional Keys:

    - gt_bboxes, gt_bboxes_labels, gt_ignore_flags, gt_masks
    - the ``meta_keys``

    Added Keys:

    - inputs (torch.uint8 ``(C, H, W)``)
    - data_samples (:class:`DetDataSample`; ``gt_instances`` with
      ``bboxes`` float32 ``(N, 4)``, ``labels`` int64 ``(N,)`` and, when
      masks are loaded, ``masks`` bool ``(N, H, W)``)

    Args:
        meta_keys (sequence[str]): Keys copied into the metainfo when
            present. Defaults to :data:`DET_META_KEYS`.
    """

    def __init__(self, meta_keys: Sequence[str] = DET_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Return ``dict(inputs=..., data_samples=...)``."""
        img = results['img']
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        boxes = np.asarray(results.get('gt_bboxes', np.zeros((0, 4))),
                           np.float32).reshape(-1, 4)
        labels = np.asarray(results.get('gt_bboxes_labels',
                                        np.zeros(0)), np.int64)
        ignore = np.asarray(results.get('gt_ignore_flags',
                                        np.zeros(len(boxes), bool)), bool)
        keep = ~ignore
        instances = InstanceData()
        instances.bboxes = torch.from_numpy(np.ascontiguousarray(boxes[keep]))
        instances.labels = torch.from_numpy(
            np.ascontiguousarray(labels[keep]))
        masks = results.get('gt_masks')
        if masks is not None:
            instances.masks = torch.from_numpy(
                np.ascontiguousarray(masks[keep]).astype(bool))
        sample = DetDataSample()
        sample.gt_instances = instances
        meta = {k: results[k] for k in self.meta_keys if k in results}
        if 'img_shape' in meta:
            meta['img_shape'] = tuple(int(v) for v in meta['img_shape'])
        if 'img_id' in meta:
            meta['img_id'] = int(meta['img_id'])
        sample.set_metainfo(meta)
        return dict(inputs=image_to_tensor(img), data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
