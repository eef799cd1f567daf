"""Resizing that keeps the aspect ratio."""
from typing import Sequence, Union

import cv2
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from ...utils.image_ops import (INTERPOLATIONS, keep_ratio_pad_geometry,
                                pad_image, resize_image,
                                resize_keep_ratio_pad)


@TRANSFORMS.register_module()
class ResizeKeepRatioPad(BaseTransform):
    """Resize so the image fits inside ``size``, then pad to exactly ``size``.

    The scale is ``min(H_out / H, W_out / W)`` (the longer side, relative to
    the target, fits); the rest is filled with ``pad_val`` (centred by
    default, so the content stays in the middle, or at the bottom/right).

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape (the resized shape before padding)
    - gt_seg_map (optional; nearest resize, padded with ``seg_pad_val``)

    Added Keys:

    - pad_shape (``(H_out, W_out)``)
    - scale_factor (``(w_scale, h_scale)``)
    - pad_border (``(top, bottom, left, right)`` padding in pixels)
    - keep_ratio (True)

    Args:
        size (int | tuple[int, int]): Output side or ``(h, w)``.
        pad_val (int | sequence[int]): Image padding value, one per channel
            or shared. Defaults to 0.
        seg_pad_val (int): Padding of ``gt_seg_map``. Defaults to 255 (the
            ignore index).
        interpolation (str): ``'nearest'``, ``'bilinear'``, ``'bicubic'``,
            ``'area'`` or ``'lanczos'``. Defaults to ``'bilinear'``; shrinking
            uses ``'area'`` when ``'bilinear'`` is chosen, to avoid aliasing.
        center (bool): Centre the image in the padded canvas; False pads at
            the bottom and right. Defaults to True.
    """

    def __init__(self,
                 size: Union[int, Sequence[int]] = 224,
                 pad_val: Union[int, Sequence[int]] = 0,
                 seg_pad_val: int = 255,
                 interpolation: str = 'bilinear',
                 center: bool = True) -> None:
        if isinstance(size, int):
            size = (size, size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f'size={size} must be a positive int or (h, w).')
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'interpolation={interpolation!r}; expected one '
                             f'of {sorted(INTERPOLATIONS)}.')
        self.size = (int(size[0]), int(size[1]))
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val
        self.interpolation = interpolation
        self.center = center

    def transform(self, results: dict) -> dict:
        """Resize and pad ``img`` (and ``gt_seg_map``)."""
        img = results['img']
        h, w = img.shape[:2]
        results['img'], border = resize_keep_ratio_pad(
            img, self.size, self.pad_val, self.interpolation, self.center)
        (new_h, new_w), _, _ = keep_ratio_pad_geometry((h, w), self.size,
                                                       self.center)
        if results.get('gt_seg_map') is not None:
            seg = resize_image(results['gt_seg_map'], (new_h, new_w),
                               cv2.INTER_NEAREST)
            results['gt_seg_map'] = pad_image(seg, border, self.seg_pad_val)
        results['img_shape'] = (new_h, new_w)
        results['pad_shape'] = tuple(self.size)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['pad_border'] = border
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val}, '
                f'interpolation={self.interpolation!r}, '
                f'center={self.center})')
