"""Pairing image volumes with mask volumes by case name."""
import logging
import os.path as osp
from typing import Dict, List, NamedTuple

from mmengine.logging import print_log

from ..io import list_volumes, volume_stem

LAYOUT = ('<img_dir>/<case>.nii.gz (or <case>.nii, or a folder <case>/ '
          'holding one DICOM series) with masks <ann_dir>/<case>.nii.gz '
          '(or .nii, or a DICOM series folder)')


class VolumePair(NamedTuple):
    """An image volume and its mask volume."""
    case: str
    img_path: str
    seg_map_path: str


def _by_case(paths: List[str], suffix: str) -> Dict[str, str]:
    found = {}
    for path in paths:
        case = volume_stem(path)
        if suffix and case.endswith(suffix):
            case = case[:-len(suffix)]
        found[case] = path
    return found


def pair_volumes(img_dir: str, ann_dir: str, img_suffix: str = '',
                 seg_map_suffix: str = '') -> List[VolumePair]:
    """Image and mask volumes of the same case, sorted by case.

    A case is the file name without ``.nii[.gz]`` (or the DICOM folder
    name), without ``img_suffix`` / ``seg_map_suffix`` when it ends with
    it (e.g. ``img_suffix='_0000'`` for nnU-Net channel names).

    Raises:
        FileNotFoundError: a folder is missing, or an image has no mask;
            the message names the folder, the files and the layout.
        ValueError: no volume in ``img_dir``.
    """
    if not osp.isdir(img_dir):
        raise FileNotFoundError(
            f'Image volume folder {img_dir} does not exist; expected '
            f'{LAYOUT}.')
    if not osp.isdir(ann_dir):
        raise FileNotFoundError(
            f'Mask volume folder {ann_dir} does not exist; expected '
            f'{LAYOUT}.')
    images = _by_case(list_volumes(img_dir), img_suffix)
    if not images:
        raise ValueError(
            f'No image volume found in {img_dir}; expected {LAYOUT}.')
    masks = _by_case(list_volumes(ann_dir), seg_map_suffix)
    missing = sorted(c for c in images if c not in masks)
    if missing:
        shown = ', '.join(osp.basename(images[c]) for c in missing[:5])
        more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
        raise FileNotFoundError(
            f'{len(missing)} image volume(s) in {img_dir} have no mask in '
            f'{ann_dir}: {shown}{more}; expected {LAYOUT}.')
    orphans = sorted(c for c in masks if c not in images)
    if orphans:
        print_log(
            f'{len(orphans)} mask volume(s) in {ann_dir} have no image in '
            f'{img_dir} and are not used: '
            f'{", ".join(orphans[:5])}{" ..." if len(orphans) > 5 else ""}',
            logger='current', level=logging.WARNING)
    return [VolumePair(c, images[c], masks[c]) for c in sorted(images)]
