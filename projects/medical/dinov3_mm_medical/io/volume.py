"""The in-memory volume type and checks on it.

A volume is a NIfTI file (``.nii`` / ``.nii.gz``) or a folder holding one
DICOM series (one file per slice). Both are read (:mod:`.reading`) into a
:class:`Volume` whose ``data[i, j, k]`` is the voxel that ``affine`` maps to
RAS+ millimetres, the NIfTI convention (DICOM series are converted to it).
This module imports no reader, so the readers can import it.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

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
