"""The in-memory volume, and reading any supported volume by its path.

A volume is a NIfTI file (``.nii`` / ``.nii.gz``) or a folder holding one
DICOM series (one file per slice). Both are read into a :class:`Volume`
whose ``data[i, j, k]`` is the voxel that ``affine`` maps to RAS+
millimetres, the NIfTI convention (DICOM series are converted to it).
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

NIFTI_SUFFIXES = ('.nii.gz', '.nii')


@dataclass
class Volume:
    """A 3D image or label volume and its geometry.

    Attributes:
        data (np.ndarray, optional): The voxels, ``(I, J, K)``; None when
            only the geometry was read.
        affine (np.ndarray): ``(4, 4)`` voxel index to RAS+ mm.
        path (str): The NIfTI file or DICOM series folder.
        kind (str): ``'nifti'`` or ``'dicom'``.
        shape (tuple[int, int, int]): Voxel grid shape.
        header (Any): The NIfTI header (``nibabel.Nifti1Header`` or
            ``Nifti2Header``) of a NIfTI file; None for DICOM.
        meta (dict): Reader details (DICOM: ``series_uid``, ``modality``,
            ``files`` in slice order, ``slice_spacing``).
    """

    data: Optional[np.ndarray]
    affine: np.ndarray
    path: str
    kind: str
    shape: Tuple[int, int, int]
    header: Any = None
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def spacing(self) -> Tuple[float, float, float]:
        """Voxel size in mm along the three array axes."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3],
                                                      axis=0))


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
    from .dicom import read_dicom_series
    from .nifti import read_nifti
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


def as_label_array(data: np.ndarray, path: str) -> np.ndarray:
    """Label voxels as the smallest fitting integer type.

    Raises:
        ValueError: a voxel is not a whole number (the message names
            ``path``).
    """
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.array_equal(
                data, np.round(data)):
            raise ValueError(
                f'Label volume {path} has non-integer values; a mask must '
                'hold class indices (save it with an integer type, or check '
                'that the image and mask folders are not swapped).')
        data = data.astype(np.int64)
    if data.size and data.min() >= 0 and data.max() <= 255:
        return data.astype(np.uint8)
    return data.astype(np.int64)


def check_same_grid(image: Volume, mask: Volume, atol: float = 1e-3) -> None:
    """Raise when ``mask`` is not on the voxel grid of ``image``.

    Raises:
        ValueError: different shapes or affines; the message names both
            files.
    """
    if tuple(image.shape) != tuple(mask.shape):
        raise ValueError(
            f'Mask {mask.path} has shape {tuple(mask.shape)} but image '
            f'{image.path} has shape {tuple(image.shape)}; a mask must be on '
            "the image's voxel grid (resample it onto the image, or pair the "
            'right files).')
    diff = float(np.abs(image.affine - mask.affine).max())
    if diff > atol:
        raise ValueError(
            f'Mask {mask.path} and image {image.path} have different affines '
            f'(largest difference {diff:.4g} > affine_atol={atol}):\nimage '
            f'{np.round(image.affine, 4).tolist()}\nmask  '
            f'{np.round(mask.affine, 4).tolist()}\nThe mask must be on the '
            "image's voxel grid: resample it (or fix its header), or raise "
            'affine_atol if the difference is only rounding.')
