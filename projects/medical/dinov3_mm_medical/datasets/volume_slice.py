"""2D / 2.5D slices of 3D image volumes and their mask volumes, as a
segmentation dataset for the core pipeline."""
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from dinov3_mm.datasets import check_data_root, classes_and_palette
from dinov3_mm.registry import DATASETS, TRANSFORMS

from ..io import check_same_grid, load_volume, read_geometry, reorient
from ..slicing import check_axis, check_context, foreground_slices
from .pairing import pair_volumes


@DATASETS.register_module()
class VolumeSliceDataset(BaseDataset):
    """Slices of image volumes with their mask volumes, for 2D segmentation.

    Folder layout (``img_dir`` and ``ann_dir`` relative to ``data_root``)::

        <img_dir>/<case>.nii.gz     or <case>.nii, or <case>/ (DICOM series)
        <ann_dir>/<case>.nii.gz     the mask, same voxel grid

    Each mask must have the image's shape and affine (within
    ``affine_atol``) and values in ``[0, len(classes))`` or
    ``ignore_index``. Every slice along ``axis`` (after ``orientation``)
    that holds a foreground label is kept; of the slices without one, a
    seeded random ``empty_slice_ratio`` share is kept (over the whole set),
    and the counts are logged and stored in :attr:`slice_stats`.

    A data info holds ``img_path`` (the image volume), ``seg_map_path``,
    ``slice_index``, ``slice_axis``, ``context``, ``orientation``,
    ``slice_id`` (``<case>_<axis letter><index>``), ``case``,
    ``num_classes``, ``ignore_index``, ``reduce_zero_label`` (False),
    ``seg_fields`` and ``palette``, which :class:`LoadVolumeSlice` and
    :class:`LoadVolumeSliceAnnotation` read.

    Args:
        data_root (str): Root folder.
        img_dir (str): Image volumes. Defaults to ``'images/train'``.
        ann_dir (str): Mask volumes. Defaults to ``'labels/train'``.
        classes (sequence[str] | str): Class names (index 0 first), or a
            text file with one per line.
        palette (sequence[sequence[int]], optional): RGB colour per class.
        axis (int): Slicing axis of the (reoriented) voxel array. Defaults
            to 2 (axial for ``orientation='RAS'``).
        context (int): 2.5D: neighbouring slices on each side stacked as
            channels (clamped at the volume edges); 1 gives 3 channels.
            Defaults to 0 (2D).
        orientation (str, optional): Axis codes the volumes are reoriented
            to before slicing (``'RAS'``, ``'LPS'``, ...; permutations and
            flips only). None keeps the stored voxel order. Defaults to
            None.
        empty_slice_ratio (float): Share of the slices without foreground
            that is kept, 0..1. Defaults to 1.0 (all).
        seed (int): Seed of the empty-slice sampling. Defaults to 0.
        ignore_index (int): Mask value left out of loss and metric.
            Defaults to 255.
        background (sequence[int]): Labels that do not count as foreground
            for the empty-slice sampling. Defaults to ``(0, )``.
        img_suffix (str): Stripped from image case names (``'_0000'`` for
            nnU-Net). Defaults to ``''``.
        seg_map_suffix (str): Stripped from mask case names. Defaults to
            ``''``.
        affine_atol (float): Largest affine difference (mm) between image
            and mask. Defaults to 1e-3.
        pipeline (list): Transforms (dicts built from dinov3_mm's
            registry).

    Raises:
        FileNotFoundError: missing ``data_root``, folder or mask (names the
            folder and the expected layout).
        ValueError: ``data_root`` is None, no volume found, mask shape / affine not matching its
            image (names both files), mask values outside the classes,
            bad arguments.
    """

    METAINFO: dict = dict(classes=None, palette=None)

    def __init__(self,
                 data_root: str = '',
                 img_dir: str = 'images/train',
                 ann_dir: str = 'labels/train',
                 classes: Any = None,
                 palette: Optional[Sequence[Sequence[int]]] = None,
                 axis: int = 2,
                 context: int = 0,
                 orientation: Optional[str] = None,
                 empty_slice_ratio: float = 1.0,
                 seed: int = 0,
                 ignore_index: int = 255,
                 background: Sequence[int] = (0, ),
                 img_suffix: str = '',
                 seg_map_suffix: str = '',
                 affine_atol: float = 1e-3,
                 metainfo: Optional[dict] = None,
                 pipeline: Sequence = (),
                 **kwargs: Any) -> None:
        check_data_root('VolumeSliceDataset', data_root, required=False)
        metainfo = dict(metainfo or {})
        names, palette = classes_and_palette('VolumeSliceDataset', classes,
                                             palette, metainfo)
        if not 0.0 <= float(empty_slice_ratio) <= 1.0:
            raise ValueError(f'VolumeSliceDataset: empty_slice_ratio='
                             f'{empty_slice_ratio} must be in [0, 1].')
        metainfo.update(classes=names, palette=palette)
        self.img_dir = img_dir
        self.ann_dir = ann_dir
        self.axis = check_axis(axis)
        self.context = check_context(context)
        self.orientation = orientation
        self.empty_slice_ratio = float(empty_slice_ratio)
        self.seed = int(seed)
        self.ignore_index = int(ignore_index)
        self.background = tuple(int(b) for b in background)
        self.img_suffix = img_suffix
        self.seg_map_suffix = seg_map_suffix
        self.affine_atol = float(affine_atol)
        self.slice_stats: Dict[str, int] = {}
        pipeline = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in pipeline
        ]
        super().__init__(data_root=data_root, metainfo=metainfo,
                         pipeline=pipeline, **kwargs)

    def _folder(self, path: str) -> str:
        if osp.isabs(path) or not self.data_root:
            return path
        return osp.join(self.data_root, path)

    def _scan(self, img_path: str, mask_path: str,
              num_classes: int) -> np.ndarray:
        """Foreground flag per slice of one checked image / mask pair."""
        image = read_geometry(img_path)
        mask = load_volume(mask_path, label=True)
        check_same_grid(image, mask, self.affine_atol)
        values = np.unique(mask.data)
        bad = values[((values < 0) | (values >= num_classes))
                     & (values != self.ignore_index)]
        if bad.size:
            raise ValueError(
                f'Mask {mask_path} has values {bad[:20].tolist()} outside the '
                f'{num_classes} classes [0, {num_classes - 1}] (ignore index '
                f'{self.ignore_index}); fix the mask or the dataset classes.')
        labels, _ = reorient(mask.data, mask.affine, self.orientation)
        return foreground_slices(labels, self.axis, self.ignore_index,
                                 self.background)

    def _sample_empty(self, empty: List[tuple]) -> List[tuple]:
        keep = int(round(self.empty_slice_ratio * len(empty)))
        if keep >= len(empty):
            return list(empty)
        rng = np.random.default_rng(self.seed)
        chosen = rng.choice(len(empty), size=keep, replace=False)
        return [empty[i] for i in sorted(chosen)]

    def load_data_list(self) -> List[dict]:
        """Check every pair, list its slices and sample the empty ones."""
        check_data_root('VolumeSliceDataset', self.data_root,
                        required=False)
        img_dir = self._folder(self.img_dir)
        ann_dir = self._folder(self.ann_dir)
        pairs = pair_volumes(img_dir, ann_dir, self.img_suffix,
                             self.seg_map_suffix)
        num_classes = len(self._metainfo['classes'])
        foreground, empty = [], []
        for v, pair in enumerate(pairs):
            flags = self._scan(pair.img_path, pair.seg_map_path, num_classes)
            for index, has_fg in enumerate(flags):
                (foreground if has_fg else empty).append((v, index))
        kept_empty = self._sample_empty(empty)
        self.slice_stats = dict(
            volumes=len(pairs), slices=len(foreground) + len(empty),
            foreground=len(foreground), empty=len(empty),
            empty_kept=len(kept_empty),
            kept=len(foreground) + len(kept_empty))
        print_log(
            f'VolumeSliceDataset {img_dir}: {len(pairs)} volumes, '
            f'{self.slice_stats["slices"]} slices along axis {self.axis}: '
            f'{len(foreground)} with foreground (all kept), {len(empty)} '
            f'empty of which {len(kept_empty)} kept (empty_slice_ratio='
            f'{self.empty_slice_ratio}, seed={self.seed}) -> '
            f'{self.slice_stats["kept"]} samples.',
            logger='current', level=logging.INFO)
        if not self.slice_stats['kept']:
            raise ValueError(
                f'VolumeSliceDataset: no slice of the {len(pairs)} volume(s) '
                f'in {img_dir} was kept ({len(empty)} empty slices, '
                f'empty_slice_ratio={self.empty_slice_ratio}); check the '
                'masks or raise empty_slice_ratio.')
        letter = 'ijk'[self.axis]
        infos = []
        for v, index in sorted(foreground + kept_empty):
            pair = pairs[v]
            infos.append(
                dict(img_path=pair.img_path,
                     seg_map_path=pair.seg_map_path,
                     case=pair.case,
                     slice_index=index,
                     slice_axis=self.axis,
                     context=self.context,
                     orientation=self.orientation,
                     slice_id=f'{pair.case}_{letter}{index:03d}',
                     reduce_zero_label=False,
                     seg_fields=[],
                     num_classes=num_classes,
                     ignore_index=self.ignore_index,
                     palette=self._metainfo['palette']))
        return infos
