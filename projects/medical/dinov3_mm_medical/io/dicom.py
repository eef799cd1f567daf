"""DICOM series: a folder of single-frame slices read into one volume.

Slices are ordered by their position along the slice normal (the cross
product of the two ``ImageOrientationPatient`` direction cosines), not by
file name or ``InstanceNumber``. Stored values become physical values
through ``RescaleSlope`` / ``RescaleIntercept`` (Hounsfield units for CT).
The affine follows the NIfTI convention (voxel ``(column, row, slice)`` to
RAS+ mm): DICOM's patient coordinates are LPS+, so x and y change sign.

A folder is refused, with the file names in the message, when it mixes
series (several ``SeriesInstanceUID``), when a slice is missing (a gap in
the positions) or the spacing is inconsistent, when two slices share a
position or an orientation differs, and when a file is not readable DICOM.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .volume import Volume, as_label_array

#: Names skipped in a series folder (besides hidden files).
IGNORED_NAMES = ('DICOMDIR', )
_REQUIRED = ('ImagePositionPatient', 'ImageOrientationPatient',
             'PixelSpacing', 'Rows', 'Columns')
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class DicomSeriesError(ValueError):
    """A DICOM series folder cannot be read as one volume."""


def list_series_files(folder: str) -> List[str]:
    """The candidate slice files of a series folder, sorted by name.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        DicomSeriesError: it holds no file.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'DICOM series folder {folder} does not '
                                'exist.')
    files = sorted(
        osp.join(folder, n) for n in os.listdir(folder)
        if not n.startswith('.') and n not in IGNORED_NAMES
        and osp.isfile(osp.join(folder, n)))
    if not files:
        raise DicomSeriesError(
            f'DICOM series folder {folder} holds no file; expected one DICOM '
            'file per slice of a single series.')
    return files


def _read_file(path: str, read_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError
    try:
        try:
            return pydicom.dcmread(path, stop_before_pixels=not read_pixels)
        except InvalidDicomError:
            # files written without the 128-byte preamble
            ds = pydicom.dcmread(path, stop_before_pixels=not read_pixels,
                                 force=True)
            if 'ImagePositionPatient' not in ds and 'SOPClassUID' not in ds:
                raise InvalidDicomError('no DICOM preamble and no image '
                                        'attributes')
            return ds
    except Exception as exc:
        raise DicomSeriesError(
            f'Cannot read DICOM file {path}: {exc}. Remove files that are '
            f'not slices of the series from {osp.dirname(path)}.') from exc


def _group_by_series(datasets: Sequence, files: Sequence[str]
                     ) -> Dict[str, List[int]]:
    groups: Dict[str, List[int]] = {}
    for i, ds in enumerate(datasets):
        groups.setdefault(str(getattr(ds, 'SeriesInstanceUID', '')),
                          []).append(i)
    return groups


def _select_series(folder: str, datasets: List, files: List[str],
                   series_uid: Optional[str]) -> Tuple[List, List[str]]:
    groups = _group_by_series(datasets, files)
    if series_uid is not None:
        if series_uid not in groups:
            raise DicomSeriesError(
                f'DICOM folder {folder} has no series {series_uid}; it holds '
                f'{sorted(groups)}.')
        keep = groups[series_uid]
    elif len(groups) > 1:
        parts = [
            f'{uid or "<no SeriesInstanceUID>"} ({len(idx)} files, e.g. '
            f'{osp.basename(files[idx[0]])})'
            for uid, idx in sorted(groups.items())
        ]
        raise DicomSeriesError(
            f'DICOM folder {folder} mixes {len(groups)} series: '
            f'{"; ".join(parts)}. Put each series in its own folder (or '
            'pass series_uid).')
    else:
        keep = next(iter(groups.values()))
    return [datasets[i] for i in keep], [files[i] for i in keep]


def _require(ds, path: str) -> None:
    missing = [tag for tag in _REQUIRED if tag not in ds]
    if missing:
        raise DicomSeriesError(
            f'DICOM file {path} lacks {", ".join(missing)}; a volume needs '
            'the position, orientation, pixel spacing and size of every '
            'slice (is it a localizer or a secondary capture?).')


def _orientation(datasets: Sequence, files: Sequence[str]) -> np.ndarray:
    """The shared ``ImageOrientationPatient`` (6 floats)."""
    first = np.asarray([float(v) for v in datasets[0].ImageOrientationPatient])
    for ds, path in zip(datasets[1:], files[1:]):
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        if not np.allclose(iop, first, atol=1e-4):
            raise DicomSeriesError(
                f'DICOM series in {osp.dirname(path)} mixes slice '
                f'orientations: {osp.basename(files[0])} has '
                f'{first.round(5).tolist()}, {osp.basename(path)} has '
                f'{iop.round(5).tolist()}. Remove the odd slices '
                '(localizer / reformat).')
    return first


def _check_spacing(positions: np.ndarray, files: Sequence[str],
                   folder: str, tolerance: float) -> float:
    """Median distance of sorted slice positions; raises on duplicates,
    gaps (missing slices) and inconsistent spacing."""
    gaps = np.diff(positions)
    for i, gap in enumerate(gaps):
        if gap < 1e-4:
            raise DicomSeriesError(
                f'DICOM series in {folder}: {osp.basename(files[i])} and '
                f'{osp.basename(files[i + 1])} share the slice position '
                f'{positions[i]:.3f} mm (duplicate slices, or several '
                'acquisitions in one series). Keep one file per position.')
    spacing = float(np.median(gaps))
    limit = max(tolerance * spacing, 1e-3)
    for i, gap in enumerate(gaps):
        if abs(gap - spacing) <= limit:
            continue
        where = (f'between {osp.basename(files[i])} (position '
                 f'{positions[i]:.3f} mm) and {osp.basename(files[i + 1])} '
                 f'(position {positions[i + 1]:.3f} mm)')
        if gap > spacing:
            missing = max(int(round(gap / spacing)) - 1, 1)
            raise DicomSeriesError(
                f'DICOM series in {folder} is missing slices: a gap of '
                f'{gap:.3f} mm {where}, where the slices are {spacing:.3f} mm '
                f'apart (about {missing} slice(s) missing). Add the missing '
                'files or export the series again.')
        raise DicomSeriesError(
            f'DICOM series in {folder} has inconsistent slice spacing: '
            f'{gap:.3f} mm {where}, where the slices are {spacing:.3f} mm '
            'apart. Resample it to a regular grid first.')
    return spacing


def _slice_pixels(ds, path: str, rows: int, cols: int) -> np.ndarray:
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing or undecodable pixel data
        raise DicomSeriesError(
            f'Cannot decode the pixel data of DICOM file {path}: {exc}. '
            'Compressed transfer syntaxes need a pydicom pixel handler '
            '(e.g. pylibjpeg or gdcm).') from exc
    if pixels.shape != (rows, cols):
        raise DicomSeriesError(
            f'DICOM file {path} is {pixels.shape} pixels (multi-frame or '
            f'colour?); the series slices are {(rows, cols)} single-frame '
            'grayscale images.')
    slope = float(getattr(ds, 'RescaleSlope', 1.0) or 1.0)
    intercept = float(getattr(ds, 'RescaleIntercept', 0.0) or 0.0)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(
        intercept)


def read_dicom_series(folder: str,
                      label: bool = False,
                      series_uid: Optional[str] = None,
                      read_pixels: bool = True,
                      spacing_tolerance: float = 0.1) -> Volume:
    """Read one DICOM series folder as a volume.

    Args:
        folder (str): Folder of single-frame slice files (hidden files and
            ``DICOMDIR`` are skipped).
        label (bool): Integer label voxels instead of float32 values.
            Defaults to False.
        series_uid (str, optional): The series to read when the folder holds
            several (otherwise that is an error).
        read_pixels (bool): False reads the headers only (``data`` None).
            Defaults to True.
        spacing_tolerance (float): Largest relative deviation of a slice
            distance from the median before the series counts as missing a
            slice or irregular. Defaults to 0.1.

    Returns:
        Volume: ``kind='dicom'``, ``data[i, j, k]`` = column ``i``, row
        ``j`` of the ``k``-th slice along the normal, rescaled; ``meta``
        has ``series_uid``, ``modality``, ``files`` (slice order) and
        ``slice_spacing``.

    Raises:
        DicomSeriesError: (a ValueError) unreadable file, mixed series,
            missing or duplicate slices, irregular spacing, differing
            orientation or size; every message names the folder or file.
    """
    files = list_series_files(folder)
    datasets = [_read_file(path, read_pixels) for path in files]
    datasets, files = _select_series(folder, datasets, files, series_uid)
    for ds, path in zip(datasets, files):
        _require(ds, path)
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    for ds, path in zip(datasets, files):
        if (int(ds.Rows), int(ds.Columns)) != (rows, cols):
            raise DicomSeriesError(
                f'DICOM file {path} is {int(ds.Rows)}x{int(ds.Columns)} but '
                f'{files[0]} is {rows}x{cols} (rows x columns); a series '
                'has one slice size.')
    iop = _orientation(datasets, files)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    ipp = np.asarray([[float(v) for v in ds.ImagePositionPatient]
                      for ds in datasets])
    order = np.argsort(ipp @ normal, kind='stable')
    datasets = [datasets[i] for i in order]
    files = [files[i] for i in order]
    ipp = ipp[order]
    positions = ipp @ normal
    if len(datasets) > 1:
        spacing = _check_spacing(positions, files, folder, spacing_tolerance)
        step = (ipp[-1] - ipp[0]) / (len(datasets) - 1)
    else:
        first = datasets[0]
        spacing = float(getattr(first, 'SpacingBetweenSlices', 0) or getattr(
            first, 'SliceThickness', 0) or 1.0)
        step = normal * spacing
    row_spacing, col_spacing = (float(v) for v in datasets[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing  # i: along a row, column index
    lps[:3, 1] = col_dir * row_spacing  # j: down a column, row index
    lps[:3, 2] = step
    lps[:3, 3] = ipp[0]
    affine = LPS_TO_RAS @ lps
    data = None
    if read_pixels:
        data = np.empty((cols, rows, len(datasets)), np.float32)
        for k, (ds, path) in enumerate(zip(datasets, files)):
            data[:, :, k] = _slice_pixels(ds, path, rows, cols).T
        if label:
            data = as_label_array(data, folder)
    first = datasets[0]
    meta = dict(series_uid=str(getattr(first, 'SeriesInstanceUID', '')),
                modality=str(getattr(first, 'Modality', '')),
                files=list(files), slice_spacing=spacing)
    return Volume(data=data, affine=affine, path=folder, kind='dicom',
                  shape=(cols, rows, len(datasets)), header=None, meta=meta)
