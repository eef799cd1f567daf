"""Semantic segmentation dataset of paired image / mask folders."""
import logging
import os.path as osp
from typing import Any, List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..registry import DATASETS, TRANSFORMS
from .base import read_classes
from .file_listing import check_data_root, list_files


def default_palette(num_classes: int, seed: int = 0) -> List[List[int]]:
    """A reproducible palette: black for class 0, random distinct colours."""
    rng = np.random.default_rng(seed)
    palette = [[0, 0, 0]]
    used = {(0, 0, 0)}
    while len(palette) < num_classes:
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if colour not in used:
            used.add(colour)
            palette.append(list(colour))
    return palette[:num_classes]


def _list_files(folder: str, suffix: str, owner: str = 'SegFolderDataset',
                reserved: Sequence[str] = ()) -> dict:
    """``{stem: path}`` of the files under ``folder`` ending in ``suffix``.

    The stem is the path relative to ``folder`` without the suffix. Links
    are followed once, each real file is listed once and skipped entries
    are reported (see :mod:`dinov3_mm.datasets.file_listing`).
    """
    paths, _ = list_files(folder, (suffix, ), owner=owner, reserved=reserved)
    return {osp.relpath(path, folder)[:-len(suffix)]: path for path in paths}


def classes_and_palette(owner: str, classes, palette, metainfo: dict):
    """Class names and one RGB colour each, from arguments or ``metainfo``.

    Args:
        owner (str): Named in error messages (the dataset class).
        classes: Names, a text file of names, or None (then
            ``metainfo['classes']``).
        palette: RGB triples, or None (``metainfo['palette']``, else a
            default palette).
        metainfo (dict): The dataset's metainfo.

    Returns:
        tuple: ``(names, palette)`` with ``palette`` as lists of ints.

    Raises:
        ValueError: No classes, or a palette that does not fit them.
    """
    names = read_classes(classes if classes is not None else
                         metainfo.get('classes'))
    if names is None:
        raise ValueError(f'{owner}: give `classes` (the class names, index 0 '
                         'first).')
    palette = palette if palette is not None else metainfo.get('palette')
    if palette is None:
        palette = default_palette(len(names))
    palette = [[int(c) for c in colour] for colour in palette]
    if len(palette) != len(names) or any(len(c) != 3 for c in palette):
        raise ValueError(
            f'{owner}: palette has {len(palette)} colours for {len(names)} '
            'classes; give one RGB triple per class.')
    return names, palette


@DATASETS.register_module()
class SegFolderDataset(BaseDataset):
    """mmseg-style folders: ``img_dir/<stem><img_suffix>`` with masks
    ``ann_dir/<stem><seg_map_suffix>`` (sub-folders allowed, paired by their
    relative path without suffix).

    Data infos hold ``img_path``, ``seg_map_path``, ``reduce_zero_label``,
    ``seg_fields`` (``[]``), ``num_classes``, ``ignore_index`` and
    ``palette`` (so :class:`LoadSegAnnotation` can check and decode); the
    metainfo holds ``classes`` and ``palette`` (generated when None).

    Args:
        data_root (str): Root folder; ``img_dir`` and ``ann_dir`` are
            relative to it (unless absolute).
        img_dir (str): Image folder. Defaults to ``'img_dir/train'``.
        ann_dir (str): Mask folder. Defaults to ``'ann_dir/train'``.
        img_suffix (str): Defaults to ``'.png'``.
        seg_map_suffix (str): Defaults to ``'.png'``.
        classes (sequence[str] | str): Class names, or a text file with one
            per line.
        palette (sequence[sequence[int]], optional): RGB colour per class.
        reduce_zero_label (bool): Label 0 is "ignore" (mapped to 255, the
            others shifted down by one). Defaults to False.
        ignore_index (int): Defaults to 255.
        allow_missing_masks (bool): Keep images without a mask (their
            ``seg_map_path`` is None, which :class:`LoadSegAnnotation` turns
            into an all-``ignore_index`` mask, so they add nothing to the
            loss or the metric) instead of raising; a warning counts them.
            Defaults to False.
        pipeline (list): Transforms (dicts built from the dinov3_mm
            registry).

    Folders are listed recursively; symbolic links are followed, but each
    real folder and file is listed once and skipped loops or duplicates are
    reported in a warning. Hidden files and folders are left out.

    Raises:
        FileNotFoundError: ``data_root`` or a folder is missing, or an image
            has no mask (the message names the image and the expected mask
            path).
        ValueError: ``data_root`` is None, no image found, or no classes
            given.
    """

    METAINFO: dict = dict(classes=None, palette=None)

    def __init__(self,
                 data_root: str = '',
                 img_dir: str = 'img_dir/train',
                 ann_dir: str = 'ann_dir/train',
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 classes: Any = None,
                 palette: Optional[Sequence[Sequence[int]]] = None,
                 reduce_zero_label: bool = False,
                 ignore_index: int = 255,
                 allow_missing_masks: bool = False,
                 metainfo: Optional[dict] = None,
                 pipeline: Sequence = (),
                 **kwargs: Any) -> None:
        check_data_root(type(self).__name__, data_root, required=False)
        metainfo = dict(metainfo or {})
        names, palette = classes_and_palette('SegFolderDataset', classes,
                                             palette, metainfo)
        metainfo.update(classes=names, palette=palette)
        self.img_dir = img_dir
        self.ann_dir = ann_dir
        self.img_suffix = img_suffix
        self.seg_map_suffix = seg_map_suffix
        self.reduce_zero_label = reduce_zero_label
        self.ignore_index = ignore_index
        self.allow_missing_masks = allow_missing_masks
        pipeline = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in pipeline
        ]
        super().__init__(
            data_root=data_root, metainfo=metainfo, pipeline=pipeline,
            **kwargs)

    def _folder(self, path: str) -> str:
        if osp.isabs(path) or not self.data_root:
            return path
        return osp.join(self.data_root, path)

    def load_data_list(self) -> List[dict]:
        """Pair every image with its mask by relative stem."""
        owner = type(self).__name__
        check_data_root(owner, self.data_root, required=False)
        img_dir, ann_dir = self._folder(self.img_dir), self._folder(
            self.ann_dir)
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'SegFolderDataset: image folder {img_dir} does not exist.')
        if not osp.isdir(ann_dir) and not self.allow_missing_masks:
            raise FileNotFoundError(
                f'SegFolderDataset: mask folder {ann_dir} does not exist.')
        reserved = [f for f in (self.data_root, img_dir, ann_dir) if f]
        images = _list_files(img_dir, self.img_suffix, owner, reserved)
        masks = _list_files(ann_dir, self.seg_map_suffix, owner,
                            reserved) if osp.isdir(ann_dir) else {}
        if not images:
            raise ValueError(
                f'SegFolderDataset: no *{self.img_suffix} image in '
                f'{img_dir}.')
        missing = sorted(s for s in images if s not in masks)
        if missing and not self.allow_missing_masks:
            shown = ', '.join(images[s] for s in missing[:5])
            more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
            raise FileNotFoundError(
                f'SegFolderDataset: {len(missing)} image(s) without a mask '
                f'in {ann_dir} (expected <stem>{self.seg_map_suffix}): '
                f'{shown}{more}. Add the masks or set '
                'allow_missing_masks=True.')
        if missing:
            print_log(
                f'SegFolderDataset: {len(missing)} image(s) in {img_dir} '
                f'have no mask in {ann_dir}; kept with seg_map_path=None '
                '(LoadSegAnnotation gives them an all-ignore mask).',
                logger='current', level=logging.WARNING)
        num_classes = len(self._metainfo['classes'])
        return [
            dict(
                img_path=images[stem],
                seg_map_path=masks.get(stem),
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[],
                num_classes=num_classes,
                ignore_index=self.ignore_index,
                palette=self._metainfo['palette']) for stem in sorted(images)
        ]
