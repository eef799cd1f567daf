"""Detection transforms that keep boxes, masks and image consistent.

Pipeline keys (mmdet-like): ``img`` (HWC uint8 RGB), ``img_shape``,
``ori_shape``, ``scale_factor`` ``(sx, sy)`` original -> current,
``border`` ``(left, top)`` position of the original image's origin in the
current one (letterbox offset), ``flip``, ``flip_direction``,
``gt_bboxes`` float32 ``(N, 4)`` xyxy, ``gt_bboxes_labels`` int64 ``(N,)``,
``gt_ignore_flags`` bool ``(N,)``, ``gt_masks`` uint8 ``(N, H, W)``
(optional) and ``ori_gt`` (set by :class:`LoadDetAnnotations`, never
changed). Sizes in arguments are ``(w, h)``, as in mmdet.
"""
from typing import Any, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from ...utils.image_ops import (INTERPOLATIONS, keep_ratio_pad_geometry,
                                pad_image, resize_image)
from .albu import build_albu

SizeType = Union[int, Sequence[int]]


def _wh(size: SizeType, name: str) -> Tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f'{name}={size} must be a positive int or (w, h).')
    return int(size[0]), int(size[1])


def segmentation_to_rle(seg: Any, height: int, width: int) -> dict:
    """A COCO segmentation (polygons, compressed or uncompressed RLE) as one
    compressed RLE with ``counts`` a str."""
    from pycocotools import mask as mask_utils
    if isinstance(seg, list):
        polys = [[float(v) for v in p] for p in seg]
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(seg.get('counts'), list):
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = dict(size=list(seg['size']), counts=seg['counts'])
    counts = rle['counts']
    if isinstance(counts, bytes):
        counts = counts.decode('ascii')
    return dict(size=[int(rle['size'][0]), int(rle['size'][1])],
                counts=counts)


def decode_segmentation(seg: Any, height: int, width: int) -> np.ndarray:
    """A COCO segmentation as a uint8 ``(height, width)`` 0/1 mask."""
    from pycocotools import mask as mask_utils
    rle = segmentation_to_rle(seg, height, width)
    rle['counts'] = rle['counts'].encode('ascii')
    return np.ascontiguousarray(mask_utils.decode(rle), dtype=np.uint8)


def mask_to_rle(mask: np.ndarray) -> dict:
    """Encode a 2-D 0/1 mask as compressed RLE with ``counts`` a str."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(v) for v in rle['size']],
                counts=rle['counts'].decode('ascii'))


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes (pixel edges) of ``(N, H, W)`` masks; zeros when
    a mask is empty."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        ys = np.flatnonzero(m.any(axis=1))
        xs = np.flatnonzero(m.any(axis=0))
        if len(xs):
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def resize_masks(masks: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ``(N, H, W)`` masks to ``hw``."""
    if len(masks) == 0:
        return np.zeros((0, ) + tuple(hw), np.uint8)
    out = [resize_image(np.ascontiguousarray(masks[i:i + 256].transpose(
        1, 2, 0)), hw, cv2.INTER_NEAREST) for i in range(0, len(masks), 256)]
    return np.ascontiguousarray(
        np.concatenate(out, axis=2).transpose(2, 0, 1))


def _defaults(results: dict) -> None:
    shape = results['img'].shape[:2]
    results.setdefault('ori_shape', shape)
    results['img_shape'] = shape
    results.setdefault('scale_factor', (1.0, 1.0))
    results.setdefault('border', (0, 0))
    results.setdefault('flip', False)
    results.setdefault('flip_direction', None)


def _scale_geometry(results: dict, sx: float, sy: float) -> None:
    """Scale boxes, ``scale_factor`` and ``border`` by ``(sx, sy)``."""
    if 'gt_bboxes' in results:
        boxes = results['gt_bboxes'] * np.array([sx, sy, sx, sy], np.float32)
        results['gt_bboxes'] = boxes.astype(np.float32)
    fx, fy = results.get('scale_factor', (1.0, 1.0))
    results['scale_factor'] = (fx * sx, fy * sy)
    left, top = results.get('border', (0, 0))
    results['border'] = (left * sx, top * sy)


def _clip_boxes(results: dict) -> None:
    if 'gt_bboxes' in results:
        h, w = results['img'].shape[:2]
        boxes = results['gt_bboxes']
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)


def _resize_to(results: dict, new_hw: Tuple[int, int],
               interpolation: str) -> None:
    h, w = results['img'].shape[:2]
    flag = INTERPOLATIONS[interpolation]
    if interpolation == 'bilinear' and new_hw[0] * new_hw[1] < h * w:
        flag = cv2.INTER_AREA
    if (h, w) != tuple(new_hw):
        results['img'] = resize_image(results['img'], new_hw, flag)
        if results.get('gt_masks') is not None:
            results['gt_masks'] = resize_masks(results['gt_masks'], new_hw)
    _scale_geometry(results, new_hw[1] / w, new_hw[0] / h)
    results['img_shape'] = tuple(new_hw)
    _clip_boxes(results)


def _select(results: dict, keep: np.ndarray) -> None:
    for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags',
                'gt_masks'):
        if results.get(key) is not None:
            results[key] = results[key][keep]


@TRANSFORMS.register_module()
class LoadDetAnnotations(BaseTransform):
    """Turn the ``instances`` of a detection data info into arrays.

    Required Keys:

    - instances (``bbox`` xyxy, ``bbox_label``, ``ignore_flag``, ``mask``)
    - img (for its shape) or height / width

    Added Keys:

    - gt_bboxes (np.float32 ``(N, 4)`` xyxy pixels)
    - gt_bboxes_labels (np.int64 ``(N,)``)
    - gt_ignore_flags (bool ``(N,)``, crowd objects)
    - gt_masks (np.uint8 ``(N, H, W)``; only with ``with_mask``)
    - ori_gt (dict: ``bboxes``, ``labels``, ``iscrowd``, ``masks`` a list of
      compressed RLE dicts, or None without ``with_mask``)
    - ori_shape, img_shape, scale_factor ``(1, 1)``, border ``(0, 0)``,
      flip False, flip_direction None (unless already set)

    Args:
        with_mask (bool): Decode the masks (polygons or RLE, with
            pycocotools). Defaults to False.
    """

    #: dropped by build_test_pipeline for inference on unlabelled images
    loads_annotations = True

    def __init__(self, with_mask: bool = False) -> None:
        self.with_mask = with_mask

    def transform(self, results: dict) -> dict:
        """Fill the ``gt_*`` keys and ``ori_gt``."""
        if 'img' in results:
            height, width = results['img'].shape[:2]
        else:
            height, width = int(results['height']), int(results['width'])
        instances = results.get('instances', [])
        boxes = np.array([i['bbox'] for i in instances],
                         np.float32).reshape(-1, 4)
        labels = np.array([i['bbox_label'] for i in instances], np.int64)
        ignore = np.array([bool(i.get('ignore_flag', 0)) for i in instances],
                          bool)
        results['gt_bboxes'] = boxes
        results['gt_bboxes_labels'] = labels
        results['gt_ignore_flags'] = ignore
        rles = None
        if self.with_mask:
            rles = []
            for inst in instances:
                if inst.get('mask') is None:
                    raise ValueError(
                        f'LoadDetAnnotations: an object of '
                        f'{results.get("img_path")} has no mask; load the '
                        'dataset with with_mask=True or use '
                        'LoadDetAnnotations(with_mask=False).')
                rles.append(segmentation_to_rle(inst['mask'], height, width))
            masks = np.zeros((len(rles), height, width), np.uint8)
            for i, rle in enumerate(rles):
                masks[i] = decode_segmentation(rle, height, width)
            results['gt_masks'] = masks
        results['ori_gt'] = dict(bboxes=boxes.copy(), labels=labels.copy(),
                                 iscrowd=ignore.copy(), masks=rles)
        if 'img' in results:
            _defaults(results)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(with_mask={self.with_mask})'


@TRANSFORMS.register_module()
class DetResize(BaseTransform):
    """Resize the image, its boxes and masks.

    With ``keep_ratio`` the image is scaled by one factor, the largest for
    which the long side fits ``max(scale)`` and the short side
    ``min(scale)`` (mmcv's rescale rule); otherwise to exactly ``scale``.
    ``scales`` picks one scale per sample (multi-scale training).
    ``size_divisor`` then rounds each side to the nearest multiple (e.g. the
    patch size), so the factors of x and y may differ slightly; they are
    recorded in ``scale_factor``.

    Required Keys:

    - img

    Modified Keys:

    - img, img_shape, gt_bboxes (clipped to the new image), gt_masks
      (nearest), scale_factor (multiplied), border (scaled)

    Args:
        scale (int | tuple[int, int], optional): ``(w, h)`` target.
        scales (sequence, optional): Several ``(w, h)`` targets; one is
            chosen per sample. Give ``scale`` or ``scales``.
        keep_ratio (bool): Keep the aspect ratio. Defaults to True.
        size_divisor (int, optional): Round the sides to multiples of it.
        interpolation (str): Image interpolation. Defaults to
            ``'bilinear'`` (``'area'`` when shrinking).
    """

    def __init__(self,
                 scale: Optional[SizeType] = None,
                 scales: Optional[Sequence[SizeType]] = None,
                 keep_ratio: bool = True,
                 size_divisor: Optional[int] = None,
                 interpolation: str = 'bilinear') -> None:
        if (scale is None) == (scales is None):
            raise ValueError('DetResize: give scale=(w, h) or scales=[(w, '
                             'h), ...], not both.')
        self.scales = [_wh(s, 'DetResize scale') for s in
                       ([scale] if scale is not None else scales)]
        if size_divisor is not None and size_divisor <= 0:
            raise ValueError(f'DetResize: size_divisor={size_divisor} must '
                             'be positive.')
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'DetResize: interpolation={interpolation!r}; '
                             f'expected one of {sorted(INTERPOLATIONS)}.')
        self.keep_ratio = keep_ratio
        self.size_divisor = size_divisor
        self.interpolation = interpolation

    def target_hw(self, hw: Tuple[int, int],
                  scale: Tuple[int, int]) -> Tuple[int, int]:
        """The output ``(h, w)`` of an ``hw`` image for ``scale`` ``(w, h)``.
        """
        h, w = hw
        if self.keep_ratio:
            factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
            new_h, new_w = int(round(h * factor)), int(round(w * factor))
        else:
            new_w, new_h = scale
        if self.size_divisor:
            d = self.size_divisor
            new_h, new_w = (max(d, int(round(v / d)) * d)
                            for v in (new_h, new_w))
        return max(1, new_h), max(1, new_w)

    def transform(self, results: dict) -> dict:
        """Resize ``img``, ``gt_bboxes`` and ``gt_masks``."""
        _defaults_keep(results)
        scale = (self.scales[0] if len(self.scales) == 1 else
                 self.scales[np.random.randint(len(self.scales))])
        _resize_to(results, self.target_hw(results['img'].shape[:2], scale),
                   self.interpolation)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scales={self.scales}, '
                f'keep_ratio={self.keep_ratio}, '
                f'size_divisor={self.size_divisor})')


def _defaults_keep(results: dict) -> None:
    """Set the geometry keys that are missing, keeping the others."""
    img_shape = results['img'].shape[:2]
    results.setdefault('ori_shape', img_shape)
    results.setdefault('scale_factor', (1.0, 1.0))
    results.setdefault('border', (0, 0))
    results.setdefault('flip', False)
    results.setdefault('flip_direction', None)


@TRANSFORMS.register_module()
class DetLetterbox(BaseTransform):
    """Resize keeping the aspect ratio to fit ``size``, then pad to it.

    Required Keys:

    - img

    Modified Keys:

    - img (exactly ``size``), img_shape, gt_bboxes (scaled and shifted),
      gt_masks (resized and padded with 0), scale_factor, border (plus the
      left / top padding)

    Args:
        size (int | tuple[int, int]): Output ``(w, h)``.
        pad_val (int | sequence[int]): Image padding. Defaults to 114.
        center (bool): Centre the content; False pads right and bottom.
            Defaults to True.
        interpolation (str): Defaults to ``'bilinear'``.
    """

    def __init__(self,
                 size: SizeType = 640,
                 pad_val: Union[int, Sequence[int]] = 114,
                 center: bool = True,
                 interpolation: str = 'bilinear') -> None:
        self.size = _wh(size, 'DetLetterbox size')
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'DetLetterbox: interpolation={interpolation!r};'
                             f' expected one of {sorted(INTERPOLATIONS)}.')
        self.pad_val = pad_val
        self.center = center
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        """Letterbox ``img``, ``gt_bboxes`` and ``gt_masks``."""
        _defaults_keep(results)
        out_w, out_h = self.size
        new_hw, pads, _ = keep_ratio_pad_geometry(
            results['img'].shape[:2], (out_h, out_w), self.center)
        _resize_to(results, new_hw, self.interpolation)
        top, _, left, _ = pads
        results['img'] = pad_image(results['img'], pads, self.pad_val)
        if results.get('gt_masks') is not None:
            masks = results['gt_masks'].transpose(1, 2, 0)
            results['gt_masks'] = np.ascontiguousarray(
                pad_image(masks, pads, 0).transpose(2, 0, 1))
        if 'gt_bboxes' in results:
            results['gt_bboxes'] = results['gt_bboxes'] + np.array(
                [left, top, left, top], np.float32)
        b_left, b_top = results['border']
        results['border'] = (b_left + left, b_top + top)
        results['img_shape'] = (out_h, out_w)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'pad_val={self.pad_val}, center={self.center})')


@TRANSFORMS.register_module()
class DetRandomFlip(BaseTransform):
    """Flip the image, boxes and masks horizontally (or vertically).

    Required Keys:

    - img

    Modified Keys:

    - img, gt_bboxes, gt_masks, border (the offset from the other side)

    Added Keys:

    - flip (bool), flip_direction

    Args:
        prob (float): Probability of flipping. Defaults to 0.5.
        direction (str): ``'horizontal'`` or ``'vertical'``. Defaults to
            ``'horizontal'``.
    """

    def __init__(self, prob: float = 0.5,
                 direction: str = 'horizontal') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'DetRandomFlip: prob={prob} not in [0, 1].')
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f'DetRandomFlip: direction={direction!r}; '
                             "expected 'horizontal' or 'vertical'.")
        self.prob = prob
        self.direction = direction

    def transform(self, results: dict) -> dict:
        """Flip with probability ``prob``."""
        _defaults_keep(results)
        if np.random.rand() >= self.prob:
            results['flip'] = False
            results['flip_direction'] = None
            return results
        h, w = results['img'].shape[:2]
        axis = 1 if self.direction == 'horizontal' else 0
        results['img'] = np.ascontiguousarray(np.flip(results['img'], axis))
        if results.get('gt_masks') is not None:
            results['gt_masks'] = np.ascontiguousarray(
                np.flip(results['gt_masks'], axis + 1))
        ori_h, ori_w = results['ori_shape']
        sx, sy = results['scale_factor']
        left, top = results['border']
        if 'gt_bboxes' in results:
            boxes = results['gt_bboxes'].copy()
            if axis == 1:
                boxes[:, [0, 2]] = w - results['gt_bboxes'][:, [2, 0]]
            else:
                boxes[:, [1, 3]] = h - results['gt_bboxes'][:, [3, 1]]
            results['gt_bboxes'] = boxes
        if axis == 1:
            results['border'] = (w - left - ori_w * sx, top)
        else:
            results['border'] = (left, h - top - ori_h * sy)
        results['flip'] = True
        results['flip_direction'] = self.direction
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'direction={self.direction!r})')


@TRANSFORMS.register_module()
class DetRandomCrop(BaseTransform):
    """Crop a random window; keep the objects that stay visible enough.

    An object is kept when at least ``min_visible`` of it stays inside the
    window: of its mask pixels when masks are loaded, else of its box area.
    Kept boxes are clipped to the window, or, with masks, recomputed from
    the cropped masks. A window that would leave an image with objects
    without any is drawn again (``max_tries`` times), then the sample is
    left uncropped; an image without objects is cropped freely.

    Required Keys:

    - img

    Modified Keys:

    - img, img_shape, gt_bboxes, gt_bboxes_labels, gt_ignore_flags,
      gt_masks, border (minus the window's top-left corner)

    Args:
        crop_size (int | tuple[int, int], optional): Window ``(w, h)``
            (clipped to the image).
        ratio_range (tuple[float, float], optional): Window side as a
            fraction of the image side, drawn per sample in this range.
            Give ``crop_size`` or ``ratio_range``.
        min_visible (float): Smallest kept fraction of an object. Defaults
            to 0.3.
        prob (float): Probability of cropping. Defaults to 1.0.
        max_tries (int): Windows drawn before giving up. Defaults to 10.
    """

    def __init__(self,
                 crop_size: Optional[SizeType] = None,
                 ratio_range: Optional[Sequence[float]] = None,
                 min_visible: float = 0.3,
                 prob: float = 1.0,
                 max_tries: int = 10) -> None:
        if (crop_size is None) == (ratio_range is None):
            raise ValueError('DetRandomCrop: give crop_size=(w, h) or '
                             'ratio_range=(lo, hi), not both.')
        if ratio_range is not None:
            lo, hi = ratio_range
            if not 0 < lo <= hi <= 1:
                raise ValueError(f'DetRandomCrop: ratio_range={ratio_range} '
                                 'must satisfy 0 < lo <= hi <= 1.')
            ratio_range = (float(lo), float(hi))
        if not 0 < min_visible <= 1:
            raise ValueError(f'DetRandomCrop: min_visible={min_visible} not '
                             'in (0, 1].')
        self.crop_size = (None if crop_size is None else
                          _wh(crop_size, 'DetRandomCrop crop_size'))
        self.ratio_range = ratio_range
        self.min_visible = min_visible
        self.prob = prob
        self.max_tries = max_tries

    def _window(self, h: int, w: int) -> Tuple[int, int, int, int]:
        if self.crop_size is not None:
            cw, ch = min(self.crop_size[0], w), min(self.crop_size[1], h)
        else:
            lo, hi = self.ratio_range
            cw = max(1, int(round(w * np.random.uniform(lo, hi))))
            ch = max(1, int(round(h * np.random.uniform(lo, hi))))
        x0 = np.random.randint(0, w - cw + 1)
        y0 = np.random.randint(0, h - ch + 1)
        return x0, y0, x0 + cw, y0 + ch

    def _kept(self, results: dict, win: Tuple[int, int, int, int]
              ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        x0, y0, x1, y1 = win
        masks = results.get('gt_masks')
        if masks is not None:
            inside = masks[:, y0:y1, x0:x1]
            total = masks.sum(axis=(1, 2), dtype=np.float64)
            seen = inside.sum(axis=(1, 2))
            frac = np.where(total > 0, seen / np.maximum(total, 1), 0.0)
            return frac >= self.min_visible, inside
        boxes = results.get('gt_bboxes', np.zeros((0, 4), np.float32))
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        iw = (np.minimum(boxes[:, 2], x1) - np.maximum(boxes[:, 0], x0))
        ih = (np.minimum(boxes[:, 3], y1) - np.maximum(boxes[:, 1], y0))
        seen = iw.clip(0) * ih.clip(0)
        frac = np.where(area > 0, seen / np.maximum(area, 1e-12), 0.0)
        return (frac >= self.min_visible) & (seen > 0), None

    def transform(self, results: dict) -> dict:
        """Crop ``img`` and its objects."""
        _defaults_keep(results)
        if np.random.rand() >= self.prob:
            return results
        h, w = results['img'].shape[:2]
        ignore = results.get('gt_ignore_flags', np.zeros(0, bool))
        has_objects = bool((~ignore).any())
        for _ in range(max(1, self.max_tries)):
            win = self._window(h, w)
            keep, inside = self._kept(results, win)
            if not has_objects or (keep & ~ignore[:len(keep)]).any():
                break
        else:
            return results
        x0, y0, x1, y1 = win
        results['img'] = np.ascontiguousarray(results['img'][y0:y1, x0:x1])
        if inside is not None:
            results['gt_masks'] = np.ascontiguousarray(inside)
        if 'gt_bboxes' in results:
            results['gt_bboxes'] = results['gt_bboxes'] - np.array(
                [x0, y0, x0, y0], np.float32)
        _select(results, keep)
        _clip_boxes(results)
        if results.get('gt_masks') is not None and len(keep):
            results['gt_bboxes'] = masks_to_boxes(results['gt_masks'])
        left, top = results['border']
        results['border'] = (left - x0, top - y0)
        results['img_shape'] = (y1 - y0, x1 - x0)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'ratio_range={self.ratio_range}, '
                f'min_visible={self.min_visible}, prob={self.prob})')


#: Colour operations of :class:`DetPhotometric` when none are given.
DEFAULT_PHOTOMETRIC = [
    dict(type='RandomBrightnessContrast', brightness_limit=0.2,
         contrast_limit=0.2, p=0.5),
    dict(type='HueSaturationValue', hue_shift_limit=10,
         sat_shift_limit=20, val_shift_limit=10, p=0.5),
]


@TRANSFORMS.register_module()
class DetPhotometric(BaseTransform):
    """Albumentations colour operations on the image only.

    Geometric albumentations transforms are refused (boxes and masks would
    no longer match); use :class:`DetResize`, :class:`DetRandomFlip` and
    :class:`DetRandomCrop` for geometry.

    Required Keys:

    - img (RGB uint8)

    Modified Keys:

    - img

    Args:
        transforms (sequence[dict], optional): Albumentations pixel-level
            transforms as ``dict(type='RandomBrightnessContrast', p=0.5)``.
            Defaults to :data:`DEFAULT_PHOTOMETRIC`.
        seed (int, optional): Seed of the albumentations generator; None
            seeds it from ``numpy.random`` on first use.

    Raises:
        ValueError: A transform that moves pixels (not an albumentations
            ``ImageOnlyTransform``).
    """

    def __init__(self, transforms: Optional[Sequence[dict]] = None,
                 seed: Optional[int] = None) -> None:
        import albumentations as A
        from albumentations.core.transforms_interface import \
            ImageOnlyTransform
        cfgs = list(transforms) if transforms is not None else \
            [dict(c) for c in DEFAULT_PHOTOMETRIC]
        built = [build_albu(c) for c in cfgs]
        for cfg, t in zip(cfgs, built):
            if not isinstance(t, ImageOnlyTransform):
                name = cfg.get('type') if isinstance(cfg, dict) else t
                raise ValueError(
                    f'DetPhotometric: {name} is not a colour-only '
                    'albumentations transform; boxes and masks would not '
                    'follow it. Use DetResize / DetRandomFlip / '
                    'DetRandomCrop for geometry.')
        self.transform_cfgs = cfgs
        self.seed = seed
        self.aug = A.Compose(built, seed=seed)
        self._seeded = seed is not None

    def transform(self, results: dict) -> dict:
        """Apply the colour operations to ``img``."""
        if not self._seeded:
            self.aug.set_random_seed(int(np.random.randint(0, 2**31 - 1)))
            self._seeded = True
        results['img'] = self.aug(image=results['img'])['image']
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms='
                f'{self.transform_cfgs}, seed={self.seed})')


__all__: List[str] = [
    'LoadDetAnnotations', 'DetResize', 'DetLetterbox', 'DetRandomFlip',
    'DetRandomCrop', 'DetPhotometric', 'DEFAULT_PHOTOMETRIC',
    'decode_segmentation', 'segmentation_to_rle', 'mask_to_rle',
    'masks_to_boxes', 'resize_masks'
]
