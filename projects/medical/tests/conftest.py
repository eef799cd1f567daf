"""Fixtures of the medical plugin tests.

In-process tests import ``dinov3_mm_medical`` from this checkout (the
project folder goes on ``sys.path``) and register its components by
importing :mod:`dinov3_mm_medical.components`. Subprocess tests (the train
command, the tools) use a real ``pip install --target`` of the project, so
dinov3_mm finds the plugin through its entry point exactly as after
``pip install projects/medical``. Every file is written under ``tmp_path``.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parents[1]
REPO_ROOT = PROJECT.parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

import dinov3_mm_medical.components  # noqa: E402,F401  (registers)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def project_root() -> Path:
    return PROJECT


@pytest.fixture(scope='session')
def plugin_site(tmp_path_factory) -> Path:
    """``pip install --no-deps --target`` of projects/medical (from a copy,
    so the source tree gets no build files); the target folder."""
    work = tmp_path_factory.mktemp('medical_plugin')
    src = work / 'src'
    shutil.copytree(PROJECT, src, ignore=shutil.ignore_patterns(
        'build', '*.egg-info', '__pycache__', 'tests'))
    site = work / 'site'
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
         '--no-build-isolation', '--no-cache-dir',
         '--disable-pip-version-check', '--quiet', '--target', str(site),
         str(src)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site


@pytest.fixture
def run_with_plugin(plugin_site, tmp_path) -> Callable:
    """Run ``python *args`` in ``cwd`` (default ``tmp_path``) with the
    installed plugin and this checkout's dinov3_mm importable; ``env``
    adds variables (progress bars are off unless it sets
    ``DINOV3_MM_PROGRESS``)."""

    def run(args: Sequence, cwd: Optional[Path] = None,
            timeout: float = 300,
            env: Optional[dict] = None) -> subprocess.CompletedProcess:
        extra = env or {}
        env = dict(os.environ)
        paths = [str(plugin_site), str(REPO_ROOT)]
        if env.get('PYTHONPATH'):
            paths.append(env['PYTHONPATH'])
        env['PYTHONPATH'] = os.pathsep.join(paths)
        env['MPLBACKEND'] = 'Agg'
        # one intra-op thread: the suite runs beside other test workers, and
        # oversubscribed cores make a ViT-B forward several times slower
        env.setdefault('OMP_NUM_THREADS', '1')
        env.pop('DINOV3_MM_NO_PLUGINS', None)
        env.pop('DINOV3_MM_PROGRESS', None)
        env.update(extra)
        return subprocess.run(
            [sys.executable] + [str(a) for a in args],
            cwd=str(cwd or tmp_path), env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout)

    return run


def _lps_affine(spacing: Sequence[float] = (0.9, 0.8, 3.0),
                angle_deg: float = 20.0,
                origin: Sequence[float] = (12.0, -7.5, 40.0)) -> np.ndarray:
    """A non-identity affine: first two axes flipped, rotated about z."""
    theta = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0],
                    [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-spacing[0], -spacing[1], spacing[2]])
    affine[:3, 3] = origin
    return affine


@pytest.fixture(scope='session')
def lps_affine() -> Callable:
    """``lps_affine(spacing=(0.9, 0.8, 3.0), angle_deg=20, origin=...)``:
    an affine with the first two axes flipped and a rotation about z."""
    return _lps_affine


def _write_nifti(path: Path, data: np.ndarray,
                 affine: Optional[np.ndarray] = None, qform_code: int = 1,
                 sform_code: int = 2) -> Path:
    import nibabel as nib
    affine = _lps_affine() if affine is None else affine
    image = nib.Nifti1Image(np.asarray(data), affine)
    image.set_qform(affine, code=qform_code)
    image.set_sform(affine, code=sform_code)
    image.header.set_xyzt_units('mm', 'sec')
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


@pytest.fixture(scope='session')
def write_nifti() -> Callable:
    """``write_nifti(path, data, affine=lps_affine(), qform_code=1,
    sform_code=2)``: a real NIfTI file (mm / sec units)."""
    return _write_nifti


def _write_ct_series(folder: Path,
                     stored: np.ndarray,
                     spacing: Sequence[float] = (0.7, 0.6, 2.5),
                     origin: Sequence[float] = (-90.0, -110.0, 30.0),
                     angle_deg: float = 30.0,
                     slope: float = 1.0,
                     intercept: float = -1024.0,
                     series_uid: Optional[str] = None,
                     skip: Iterable[int] = (),
                     positions: Optional[Sequence[float]] = None,
                     name_prefix: str = 'IM') -> dict:
    """Write ``stored[:, :, k]`` (column, row) as CT slice files.

    The slices lie along the normal of a rotated in-plane orientation,
    ``spacing = (column spacing, row spacing, slice distance)`` in mm, file
    names in an order unrelated to the positions. ``positions`` overrides
    the distance of each slice along the normal; ``skip`` leaves slices out.

    Returns:
        dict: ``files`` (slice order), ``affine`` (the expected RAS affine
        of the full series), ``series_uid``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, \
        generate_uid
    theta = np.deg2rad(angle_deg)
    row_dir = np.array([np.cos(theta), np.sin(theta), 0.0])
    col_dir = np.array([-np.sin(theta), np.cos(theta), 0.0])
    normal = np.cross(row_dir, col_dir)
    origin = np.asarray(origin, np.float64)
    cols, rows, num = stored.shape
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    if positions is None:
        positions = [k * spacing[2] for k in range(num)]
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(num):
        if k in set(skip):
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.Modality = 'CT'
        ds.PatientID = 'PHANTOM'
        ds.InstanceNumber = num - k
        position = origin + normal * positions[k]
        ds.ImagePositionPatient = [f'{v:.4f}' for v in position]
        ds.ImageOrientationPatient = [f'{v:.6f}'
                                      for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [f'{spacing[1]:.4f}', f'{spacing[0]:.4f}']
        ds.SliceThickness = f'{spacing[2]:.4f}'
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = 'MONOCHROME2'
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = f'{slope:g}'
        ds.RescaleIntercept = f'{intercept:g}'
        ds.PixelData = np.ascontiguousarray(
            stored[:, :, k].T.astype('<i2')).tobytes()
        # names ordered neither by position nor by instance number
        path = folder / f'{name_prefix}{(k * 7919) % 1009:04d}.dcm'
        try:
            ds.save_as(str(path), enforce_file_format=True)
        except TypeError:  # pydicom < 3
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.save_as(str(path), write_like_original=False)
        files.append(path)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[0]
    lps[:3, 1] = col_dir * spacing[1]
    lps[:3, 2] = normal * spacing[2]
    lps[:3, 3] = origin + normal * positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return dict(files=files, affine=affine, series_uid=series_uid)


@pytest.fixture(scope='session')
def write_ct_series() -> Callable:
    """``write_ct_series(folder, stored, spacing=(0.7, 0.6, 2.5), ...)``;
    see :func:`_write_ct_series`."""
    return _write_ct_series


@pytest.fixture(scope='session')
def mri_root(tmp_path_factory) -> Path:
    """The synthetic MRI set: 2 training and 1 validation case of
    48 x 48 x 12 voxels (read only)."""
    from dinov3_mm_medical.synthetic import write_mri_volumes
    root = tmp_path_factory.mktemp('mri') / 'mri_volumes'
    write_mri_volumes(str(root), num_train=2, num_val=1, shape=(48, 48, 12),
                      seed=0)
    return root
