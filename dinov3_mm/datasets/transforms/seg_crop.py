"""Random scale jitter and random crops of an image and its mask.

The usual paired training pipeline of a segmentation model (mmseg-style
scale jitter, then a crop that is not all one class, then flips, a small
rotation and colour jitter through albumentations, which moves
``gt_seg_map`` along with the image)::

    import cv2

    train_pipeline = [
        dict(type='LoadImage'),
        dict(type='LoadSegAnnotation'),
        dict(type='RandomRescale', scale=(512, 1024), ratio_range=(0.5, 2.0)),
        dict(type='RandomCropCatRatio', crop_size=(512, 512),
             cat_max_ratio=0.75),
        dict(type='Albumentations', transforms=[
            dict(type='HorizontalFlip', p=0.5),
            # albumentations >= 1.4.21 / 2.x names: ``fill`` for the image,
            # ``fill_mask`` for the mask (1.x: ``value`` / ``mask_value``).
            # fill_mask=255 marks the corners rotated in as ignored; the
            # default 0 would label them class 0.
            dict(type='Rotate', limit=10,
                 border_mode=cv2.BORDER_CONSTANT,  # 0 in a config file
                 fill=0, fill_mask=255, p=0.5),
            dict(type='ColorJitter', brightness=0.2, contrast=0.2,
                 saturation=0.2, hue=0.05, p=0.5),
        ]),
        dict(type='PackSegInputs'),
    ]

Both transforms draw from numpy's global generator (as mmcv / mmseg do),
which mmengine seeds per dataloader worker from ``randomness=dict(seed=...)``,
so runs are reproducible.
"""
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

_CV2_NEAREST_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32,
                       np.float32, np.float64)


def _pair(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(value)
    if len(value) != 2 or min(value) <= 0:
        raise ValueError(f'{name}={value} must be a positive int or (h, w).')
    return int(value[0]), int(value[1])


def _seg_keys(results: dict) -> list:
    keys = list(results.get('seg_fields') or [])
    if 'gt_seg_map' not in keys:
        keys.append('gt_seg_map')
    return [k for k in keys if results.get(k) is not None]


def resize_nearest(seg: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to ``size`` ``(h, w)``, any
    integer dtype (as ``cv2.INTER_NEAREST``)."""
    h, w = size
    if seg.dtype.type in _CV2_NEAREST_DTYPES:
        return cv2.resize(seg, (w, h), interpolation=cv2.INTER_NEAREST)
    rows = np.minimum((np.arange(h) * (seg.shape[0] / h)).astype(np.int64),
                      seg.shape[0] - 1)
    cols = np.minimum((np.arange(w) * (seg.shape[1] / w)).astype(np.int64),
                      seg.shape[1] - 1)
    return seg[rows[:, None], cols[None, :]]


def rescale_size(hw: Tuple[int, int],
                 scale: Tuple[int, int]) -> Tuple[Tuple[int, int], float]:
    """mmcv's ``rescale_size``: the largest ``(h, w)`` with the aspect ratio
    of ``hw`` whose long side fits ``max(scale)`` and short side
    ``min(scale)``, and the factor."""
    h, w = hw
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return (int(h * factor + 0.5), int(w * factor + 0.5)), factor


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Random scale jitter around a base scale, as mmseg's ``RandomResize``.

    A ratio ``r`` is drawn uniformly from ``ratio_range`` and the target is
    ``(int(h * r), int(w * r))`` of ``scale``. With ``keep_ratio`` the image
    keeps its aspect ratio and is made as large as fits the target (long
    side within ``max(target)``, short side within ``min(target)``, so the
    order of ``scale`` does not matter); otherwise it is resized to the
    target exactly. The image is resized bilinearly, the masks
    (``gt_seg_map`` and ``seg_fields``) by nearest neighbour.

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape
    - gt_seg_map and the ``seg_fields`` (optional)

    Added Keys:

    - scale_factor (``(w_scale, h_scale)``, new size over old)
    - keep_ratio

    Args:
        scale (int | tuple[int, int]): Base scale ``(h, w)``.
        ratio_range (tuple[float, float]): Range of the random ratio.
            Defaults to ``(0.5, 2.0)``.
        keep_ratio (bool): Keep the aspect ratio. Defaults to True.
    """

    def __init__(self,
                 scale: Union[int, Sequence[int]],
                 ratio_range: Sequence[float] = (0.5, 2.0),
                 keep_ratio: bool = True) -> None:
        self.scale = _pair(scale, 'scale')
        ratio_range = tuple(float(r) for r in ratio_range)
        if (len(ratio_range) != 2 or ratio_range[0] <= 0
                or ratio_range[0] > ratio_range[1]):
            raise ValueError(f'ratio_range={ratio_range} must be (min, max) '
                             'with 0 < min <= max.')
        self.ratio_range = ratio_range
        self.keep_ratio = keep_ratio

    def _target(self) -> Tuple[int, int]:
        low, high = self.ratio_range
        ratio = np.random.random_sample() * (high - low) + low
        return int(self.scale[0] * ratio), int(self.scale[1] * ratio)

    def transform(self, results: dict) -> dict:
        """Resize ``img`` and the masks to a random scale."""
        target = self._target()
        img = results['img']
        h, w = img.shape[:2]
        if self.keep_ratio:
            new_h, new_w = rescale_size((h, w), target)[0]
        else:
            new_h, new_w = target
        new_h, new_w = max(new_h, 1), max(new_w, 1)
        if (new_h, new_w) != (h, w):
            resized = cv2.resize(img, (new_w, new_h),
                                 interpolation=cv2.INTER_LINEAR)
            if img.ndim == 3 and resized.ndim == 2:  # cv2 drops a 1-channel
                resized = resized[..., None]
            results['img'] = resized
            for key in _seg_keys(results):
                results[key] = resize_nearest(results[key], (new_h, new_w))
        results['img_shape'] = (new_h, new_w)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = self.keep_ratio
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'ratio_range={self.ratio_range}, '
                f'keep_ratio={self.keep_ratio})')


@TRANSFORMS.register_module()
class RandomCropCatRatio(BaseTransform):
    """Random crop of the image and its masks that is not dominated by one
    class, as mmseg's ``RandomCrop``.

    The crop offset is drawn uniformly; with ``cat_max_ratio < 1`` it is
    redrawn (up to ``max_tries`` times, mmseg's 10 by default) until the crop
    of ``gt_seg_map`` has more than one class and the largest covers less
    than ``cat_max_ratio`` of its non-ignored pixels; after the last try the
    last offset is kept. An image smaller than ``crop_size`` is cropped to
    itself along that side and padded at the bottom / right, the image with
    ``pad_val`` and the masks with ``ignore_index``, so the output is always
    ``crop_size``.

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape (the cropped content, before padding)
    - gt_seg_map and the ``seg_fields`` (optional)

    Added Keys:

    - pad_shape (``crop_size``)
    - pad_border (``(0, bottom, 0, right)`` padding in pixels)
    - crop_bbox (``(y1, y2, x1, x2)`` in the input image)

    Args:
        crop_size (int | tuple[int, int]): Output ``(h, w)``.
        cat_max_ratio (float): Largest share of one class in the crop.
            Defaults to 1.0 (no check).
        ignore_index (int): Label left out of the ratio, and the mask
            padding. Defaults to 255.
        max_tries (int): Crops tried. Defaults to 10.
        pad_val (int | float): Image padding. Defaults to 0.
    """

    def __init__(self,
                 crop_size: Union[int, Sequence[int]],
                 cat_max_ratio: float = 1.0,
                 ignore_index: int = 255,
                 max_tries: int = 10,
                 pad_val: Union[int, float] = 0) -> None:
        self.crop_size = _pair(crop_size, 'crop_size')
        if not 0 < cat_max_ratio <= 1:
            raise ValueError(f'cat_max_ratio={cat_max_ratio} must be in '
                             '(0, 1].')
        if max_tries < 1:
            raise ValueError(f'max_tries={max_tries} must be >= 1.')
        self.cat_max_ratio = float(cat_max_ratio)
        self.ignore_index = ignore_index
        self.max_tries = int(max_tries)
        self.pad_val = pad_val

    def _random_bbox(self, h: int, w: int) -> Tuple[int, int, int, int]:
        margin_h = max(h - self.crop_size[0], 0)
        margin_w = max(w - self.crop_size[1], 0)
        top = np.random.randint(0, margin_h + 1)
        left = np.random.randint(0, margin_w + 1)
        return (top, top + min(self.crop_size[0], h), left,
                left + min(self.crop_size[1], w))

    def _balanced(self, seg: np.ndarray) -> bool:
        labels, counts = np.unique(seg, return_counts=True)
        counts = counts[labels != self.ignore_index]
        return (len(counts) > 1
                and counts.max() / counts.sum() < self.cat_max_ratio)

    def crop_bbox(self, results: dict) -> Tuple[int, int, int, int]:
        """A random ``(y1, y2, x1, x2)`` meeting ``cat_max_ratio``."""
        h, w = results['img'].shape[:2]
        bbox = self._random_bbox(h, w)
        seg: Optional[np.ndarray] = results.get('gt_seg_map')
        if self.cat_max_ratio < 1.0 and seg is not None:
            for _ in range(self.max_tries):
                y1, y2, x1, x2 = bbox
                if self._balanced(seg[y1:y2, x1:x2]):
                    break
                bbox = self._random_bbox(h, w)
        return bbox

    @staticmethod
    def _pad(array: np.ndarray, bottom: int, right: int,
             value: Union[int, float]) -> np.ndarray:
        if not bottom and not right:
            return array
        widths = [(0, bottom), (0, right)] + [(0, 0)] * (array.ndim - 2)
        return np.pad(array, widths, mode='constant', constant_values=value)

    def transform(self, results: dict) -> dict:
        """Crop (and pad) ``img`` and the masks to ``crop_size``."""
        y1, y2, x1, x2 = bbox = self.crop_bbox(results)
        bottom = self.crop_size[0] - (y2 - y1)
        right = self.crop_size[1] - (x2 - x1)
        results['img'] = self._pad(results['img'][y1:y2, x1:x2], bottom,
                                   right, self.pad_val)
        for key in _seg_keys(results):
            results[key] = self._pad(results[key][y1:y2, x1:x2], bottom,
                                     right, self.ignore_index)
        results['img_shape'] = (y2 - y1, x2 - x1)
        results['pad_shape'] = self.crop_size
        results['pad_border'] = (0, bottom, 0, right)
        results['crop_bbox'] = bbox
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'cat_max_ratio={self.cat_max_ratio}, '
                f'ignore_index={self.ignore_index}, '
                f'max_tries={self.max_tries}, pad_val={self.pad_val})')
