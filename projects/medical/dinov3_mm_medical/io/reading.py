"""Finding volumes on disk and reading any supported one by its path."""
import os
import os.path as osp
from typing import List, Optional

from .dicom import read_dicom_series
from .nifti import read_nifti
from .volume import NIFTI_SUFFIXES, Volume


def is_nifti_path(path: str) -> bool:
    """Whether ``path`` names a NIfTI file by its suffix."""
    return path.lower().endswith(NIFTI_SUFFIXES)


def volume_stem(path: str) -> str:
    """Case name of a volume: the file name without ``.nii[.gz]``, or the
    DICOM folder's name."""
    name = osp.basename(osp.normpath(path))
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return name


def _visible(names: List[str]) -> List[str]:
    return sorted(n for n in names if not n.startswith('.'))


def is_dicom_series_folder(path: str) -> bool:
    """Whether ``path`` is a folder holding slice files and no NIfTI file
    nor sub-folder (so it is one DICOM series, not a folder of volumes)."""
    if not osp.isdir(path):
        return False
    entries = _visible(os.listdir(path))
    files = [n for n in entries if osp.isfile(osp.join(path, n))]
    if any(osp.isdir(osp.join(path, n)) for n in entries):
        return False
    return bool(files) and not any(is_nifti_path(n) for n in files)


def list_volumes(folder: str) -> List[str]:
    """The volumes directly inside ``folder``: NIfTI files and sub-folders
    (each one DICOM series), sorted by name.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Volume folder {folder} does not exist.')
    found = []
    for name in _visible(os.listdir(folder)):
        path = osp.join(folder, name)
        if osp.isdir(path) or (osp.isfile(path) and is_nifti_path(name)):
            found.append(path)
    return found


def load_volume(path: str, label: bool = False,
                series_uid: Optional[str] = None,
                read_voxels: bool = True) -> Volume:
    """Read a NIfTI file or a DICOM series folder.

    Args:
        path (str): ``.nii`` / ``.nii.gz`` file or DICOM series folder.
        label (bool): Read a label map: integer voxels (checked to be whole
            numbers) instead of float32 intensities. Defaults to False.
        series_uid (str, optional): DICOM only: the series to read when the
            folder holds several.
        read_voxels (bool): False reads only the shape and affine
            (``Volume.data`` is None). Defaults to True.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unsupported path, or the reader's errors (each names
            the file or folder).
    """
    if osp.isdir(path):
        return read_dicom_series(path, label=label, series_uid=series_uid,
                                 read_pixels=read_voxels)
    if not osp.exists(path):
        raise FileNotFoundError(f'Volume {path} does not exist.')
    if is_nifti_path(path):
        return read_nifti(path, label=label, read_data=read_voxels)
    raise ValueError(f'Cannot read volume {path}: expected a .nii / .nii.gz '
                     'file or a folder holding one DICOM series.')


def read_geometry(path: str, series_uid: Optional[str] = None) -> Volume:
    """The shape and affine of a volume without its voxels
    (``Volume.data`` is None); same arguments and errors as
    :func:`load_volume`."""
    return load_volume(path, series_uid=series_uid, read_voxels=False)
