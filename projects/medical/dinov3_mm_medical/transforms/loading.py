"""Loading one slice (2D or 2.5D) of an image volume and of its mask.

The data infos of :class:`~dinov3_mm_medical.datasets.VolumeSliceDataset`
name a volume and a slice; these transforms read the volume (kept in a small
per-process cache, as consecutive samples often come from the same volume)
and cut the slice out. The slice geometry (``slice_axis``, ``context``,
``orientation``) comes with each sample, so the dataset is the one place
that sets it.
"""
from collections import OrderedDict
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from dinov3_mm.datasets.transforms import (check_mask_values,
                                                       store_seg_map)
from dinov3_mm.registry import TRANSFORMS

from ..io import load_volume, reorient
from ..slicing import extract_slice


class VolumeCache:
    """Least-recently-used cache of reoriented volumes.

    Args:
        size (int): Volumes kept; 0 disables caching.
        label (bool): Read label volumes (integer) instead of intensities.
    """

    def __init__(self, size: int, label: bool = False) -> None:
        if size < 0:
            raise ValueError(f'cache_size={size} must be >= 0.')
        self.size = int(size)
        self.label = label
        self._items: 'OrderedDict[Tuple, np.ndarray]' = OrderedDict()

    def get(self, path: str, orientation: Optional[str]) -> np.ndarray:
        """The voxels of ``path`` in ``orientation`` (read on a miss)."""
        key = (path, orientation)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        volume = load_volume(path, label=self.label)
        data, _ = reorient(volume.data, volume.affine, orientation)
        data = np.ascontiguousarray(data)
        if self.size:
            self._items[key] = data
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return data

    def __getstate__(self) -> dict:
        # dataloader workers start with an empty cache
        state = dict(self.__dict__)
        state['_items'] = OrderedDict()
        return state


def volume_key(path: str, orientation: Optional[str]) -> str:
    """Identifier of a volume as loaded (path and orientation)."""
    return f'{path}|{orientation or "stored"}'


@TRANSFORMS.register_module()
class LoadVolumeSlice(BaseTransform):
    """Read slice ``slice_index`` of the image volume ``img_path``.

    When ``results['volume']`` is already set (volume inference), that
    array is sliced instead of reading the file.

    Required Keys:

    - img_path (NIfTI file or DICOM series folder)
    - slice_index

    Optional Keys:

    - slice_axis (default 2), context (default 0), orientation (default
      None: stored voxel order)
    - volume (the volume's voxels, already in ``orientation``)

    Added Keys:

    - img (float32 ``(H, W)``, or ``(H, W, 2 * context + 1)`` for 2.5D)
    - img_shape, ori_shape (``(H, W)``)
    - volume (float32 voxels of the whole volume, for volume statistics)
    - volume_key (str)

    Args:
        cache_size (int): Volumes kept in memory per process. Defaults to 4.
    """

    def __init__(self, cache_size: int = 4) -> None:
        self.cache = VolumeCache(cache_size, label=False)

    def transform(self, results: dict) -> dict:
        """Cut the (2.5D) slice out of the volume."""
        path = results['img_path']
        orientation = results.get('orientation')
        volume = results.get('volume')
        if volume is None:
            volume = self.cache.get(path, orientation)
        axis = results.get('slice_axis', 2)
        index = int(results['slice_index'])
        try:
            img = extract_slice(volume, axis, index,
                                results.get('context', 0))
        except IndexError as exc:
            raise IndexError(f'{path}: {exc}') from exc
        results['img'] = img.astype(np.float32, copy=False)
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['volume'] = volume
        results.setdefault('volume_key', volume_key(path, orientation))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(cache_size={self.cache.size})'


@TRANSFORMS.register_module()
class LoadVolumeSliceAnnotation(BaseTransform):
    """Read slice ``slice_index`` of the label volume ``seg_map_path`` as
    ``gt_seg_map`` (the centre slice only, also for 2.5D images).

    Values are checked against ``num_classes`` / ``ignore_index`` and the
    size against ``ori_shape`` (put this transform after the resize of a
    test pipeline, as the core ``LoadSegAnnotation``, so the mask keeps the
    original size the segmentor predicts at).

    Required Keys:

    - seg_map_path, slice_index

    Optional Keys:

    - slice_axis, orientation, ori_shape, num_classes, ignore_index,
      img_path (messages)

    Added Keys:

    - gt_seg_map (np.uint8 ``(H, W)``; np.int64 when a value exceeds 255)
    - seg_fields (``'gt_seg_map'`` appended)
    - reduce_zero_label (False)

    Args:
        cache_size (int): Label volumes kept in memory per process.
            Defaults to 4.
    """

    #: Dropped from inference pipelines (there are no labels there).
    loads_annotations = True

    def __init__(self, cache_size: int = 4) -> None:
        self.cache = VolumeCache(cache_size, label=True)

    def transform(self, results: dict) -> dict:
        """Cut the mask slice out of the label volume."""
        path = results['seg_map_path']
        labels = self.cache.get(path, results.get('orientation'))
        index = int(results['slice_index'])
        axis = results.get('slice_axis', 2)
        try:
            seg = extract_slice(labels, axis, index)
        except IndexError as exc:
            raise IndexError(f'{path}: {exc}') from exc
        ori = results.get('ori_shape')
        if ori is not None and tuple(ori[:2]) != seg.shape:
            raise ValueError(
                f'Mask {path} slice {index} is {seg.shape} but image '
                f'{results.get("img_path", "<unknown>")} slice is '
                f'{tuple(ori[:2])}; image and mask volumes must share one '
                'voxel grid.')
        seg = check_mask_values(seg, results.get('num_classes'),
                                results.get('ignore_index', 255),
                                f'Mask {path} slice {index}')
        return store_seg_map(results, seg, reduce_zero_label=False)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(cache_size={self.cache.size})'
