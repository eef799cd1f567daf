"""Data sample of classification: ground truth and predictions of one image."""
from numbers import Number
from typing import Sequence, Union

import numpy as np
import torch
from mmengine.structures import BaseDataElement

LabelType = Union[torch.Tensor, np.ndarray, Sequence[int], int]


def format_label(value: LabelType) -> torch.Tensor:
    """Turn an index, a sequence of indices or an array into a 1-D LongTensor.

    Raises:
        TypeError: For anything that is not an integer label.
    """
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        value = torch.tensor(list(value), dtype=torch.long)
    elif isinstance(value, Number) and not isinstance(value, bool):
        value = torch.tensor([int(value)], dtype=torch.long)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f'Cannot use {type(value).__name__} {value!r} as a '
                        'class label; expected an int or a list of ints.')
    if value.ndim == 0:
        value = value.unsqueeze(0)
    return value.long()


class DataSample(BaseDataElement):
    """One image's labels and predictions.

    Fields:
        gt_label (LongTensor): class index, or the indices of every positive
            class for multi-label data (shape ``(k,)``).
        gt_score (Tensor, optional): a soft / multi-hot target
            ``(num_classes,)`` (e.g. after mixup).
        pred_score (Tensor): class probabilities ``(num_classes,)``.
        pred_label (LongTensor): predicted index (or indices, multi-label).

    Meta information (``metainfo``) carries ``img_path``, ``ori_shape``,
    ``img_shape`` and ``num_classes`` when known.
    """

    def set_gt_label(self, value: LabelType) -> 'DataSample':
        self.set_field(format_label(value), 'gt_label', dtype=torch.Tensor)
        return self

    def set_gt_score(self, value: torch.Tensor) -> 'DataSample':
        self.set_field(torch.as_tensor(value, dtype=torch.float32), 'gt_score',
                       dtype=torch.Tensor)
        return self

    def set_pred_score(self, value: torch.Tensor) -> 'DataSample':
        self.set_field(torch.as_tensor(value), 'pred_score',
                       dtype=torch.Tensor)
        return self

    def set_pred_label(self, value: LabelType) -> 'DataSample':
        self.set_field(format_label(value), 'pred_label', dtype=torch.Tensor)
        return self
