"""Shared machinery of the classification datasets."""
import logging
import os.path as osp
from typing import Any, Dict, Hashable, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..registry import TRANSFORMS
from .split import (SPLIT_NAMES, RatiosType, normalize_split_ratios,
                    stratified_split)

ClassesType = Union[Sequence[str], str, None]


def read_classes(classes: ClassesType) -> Optional[tuple]:
    """Class names from a sequence, or from a text file with one per line."""
    if classes is None:
        return None
    if isinstance(classes, str):
        if not osp.isfile(classes):
            raise FileNotFoundError(
                f'classes={classes!r} is a string but not a file; give a list '
                'of class names or a text file with one name per line.')
        with open(classes, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = [str(c) for c in classes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'classes {names} repeat {duplicates}; every class '
                         'name must be unique.')
    if not names:
        raise ValueError('classes is empty; give at least one class name.')
    return tuple(names)


def _split_order(item: tuple) -> int:
    return SPLIT_NAMES.index(item[0]) if item[0] in SPLIT_NAMES else 3


class BaseClsDataset(BaseDataset):
    """Classification dataset whose class list may be discovered on load.

    Subclasses implement :meth:`load_samples`, returning the data infos
    (``img_path``, ``gt_label``, optional ``split``) and the class names; this
    class applies the split selection (given or automatic stratified) and
    stores ``metainfo['classes']``.

    Args:
        classes (sequence[str] | str, optional): Class names, or a text file
            with one per line. Defaults to None (discovered from the data).
        split (str, optional): ``'train'``, ``'val'`` or ``'test'``; None
            keeps every sample. Defaults to None.
        split_ratios (sequence | dict, optional): Fractions of an automatic
            stratified split used when the data name no split. Defaults to
            None, i.e. ``(0.8, 0.1, 0.1)``.
        split_seed (int): Seed of the automatic split. Defaults to 0.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``test_mode``, ``lazy_init``, ``indices``...).
            Pipeline dicts are built from the ``dinov3_mm`` registry, so
            the dataset also works outside a Runner's default scope.
    """

    METAINFO: dict = dict(classes=None)

    def __init__(self,
                 classes: ClassesType = None,
                 split: Optional[str] = None,
                 split_ratios: RatiosType = None,
                 split_seed: int = 0,
                 metainfo: Optional[dict] = None,
                 **kwargs: Any) -> None:
        if split is not None and split not in SPLIT_NAMES:
            raise ValueError(f'split={split!r} is not one of {SPLIT_NAMES} '
                             'or None.')
        metainfo = dict(metainfo or {})
        given = read_classes(classes if classes is not None else
                             metainfo.get('classes'))
        metainfo['classes'] = given
        if 'pipeline' in kwargs:
            kwargs['pipeline'] = [
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in kwargs['pipeline']
            ]
        self.split = split
        self.split_ratios = normalize_split_ratios(split_ratios)
        self.split_seed = split_seed
        self.file_ids: Dict[str, Hashable] = {}
        super().__init__(metainfo=metainfo, **kwargs)

    @property
    def given_classes(self) -> Optional[tuple]:
        """The classes named in the config, or None to discover them."""
        return self._metainfo.get('classes')

    def load_samples(self) -> tuple:
        """Return ``(data_list, classes)``; ``split`` set where known.

        Subclasses may fill :attr:`file_ids` (``{img_path: identity}``, e.g.
        ``(st_dev, st_ino)``) so that one real file reached through two
        paths is recognised; paths missing there are compared as
        normalised absolute paths.
        """
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Load every sample, then keep those of ``self.split``."""
        data_list, classes = self.load_samples()
        self._metainfo['classes'] = tuple(classes)
        if self.split is not None:
            missing = [i for i in data_list if i.get('split') is None]
            if missing:
                splits = stratified_split(self._strata(missing),
                                          self.split_ratios, self.split_seed)
                for info, name in zip(missing, splits):
                    info['split'] = name
        self._report_split_overlap(data_list)
        if self.split is None:
            return data_list
        selected = [i for i in data_list if i['split'] == self.split]
        if not selected:
            raise ValueError(
                f'{type(self).__name__}: split {self.split!r} of '
                f'{self.ann_file or self.data_root!r} has no sample '
                f'(split_ratios={self.split_ratios}); add data or change '
                'the split or ratios.')
        return selected

    def _report_split_overlap(self, data_list: List[dict]) -> None:
        """Warn about real files that are in more than one split."""
        splits: Dict[Hashable, Dict[str, str]] = {}
        for info in data_list:
            split = info.get('split')
            if split is None:
                continue
            path = info['img_path']
            key = self.file_ids.get(path) or osp.normpath(osp.abspath(path))
            splits.setdefault(key, {}).setdefault(split, path)
        shared = [by_split for by_split in splits.values()
                  if len(by_split) > 1]
        if not shared:
            return
        shown = '; '.join(
            ', '.join(f'{path!r} in {split}' for split, path in
                      sorted(by_split.items(), key=_split_order))
            for by_split in shared[:3])
        more = f' (and {len(shared) - 3} more)' if len(shared) > 3 else ''
        print_log(
            f'{type(self).__name__}: {len(shared)} file(s) of '
            f'{self.ann_file or self.data_root!r} are in more than one '
            f'split (the same file, through links or listed twice): '
            f'{shown}{more}. Keep each file in one split; '
            'tools/validate_dataset.py also finds copies by content.',
            logger='current', level=logging.WARNING)

    @staticmethod
    def _strata(data_list: List[dict]) -> list:
        """Class of each sample; the rarest positive one for multi-label."""
        labels = [info['gt_label'] for info in data_list]
        if not labels or not isinstance(labels[0], list):
            return labels
        freq: Dict[int, int] = {}
        for label in labels:
            for index in label:
                freq[index] = freq.get(index, 0) + 1
        return [min(label, key=lambda i: (freq[i], i)) if label else 'none'
                for label in labels]

    def get_gt_labels(self) -> np.ndarray:
        """Labels of every sample (an object array for multi-label data)."""
        labels = [self.get_data_info(i)['gt_label'] for i in range(len(self))]
        if labels and isinstance(labels[0], list):
            out = np.empty(len(labels), dtype=object)
            out[:] = labels
            return out
        return np.array(labels, dtype=np.int64)

    def get_cat_ids(self, idx: int) -> List[int]:
        """Class indices of sample ``idx`` (used by class-aware samplers)."""
        label = self.get_data_info(idx)['gt_label']
        return list(label) if isinstance(label, list) else [int(label)]
