"""Volume input and output: NIfTI files, DICOM series, orientation."""
from .dicom import DicomSeriesError, list_series_files, read_dicom_series
from .nifti import label_dtype, read_nifti, write_label_nifti
from .orientation import reorient, reoriented_shape, undo_reorient
from .reading import (is_dicom_series_folder, is_nifti_path, list_volumes,
                      load_volume, read_geometry, volume_stem)
from .volume import NIFTI_SUFFIXES, Volume, as_label_array, check_same_grid

__all__ = [
    'DicomSeriesError', 'list_series_files', 'read_dicom_series',
    'label_dtype', 'read_nifti', 'write_label_nifti', 'reorient',
    'reoriented_shape', 'undo_reorient', 'NIFTI_SUFFIXES', 'Volume',
    'as_label_array', 'check_same_grid', 'is_dicom_series_folder',
    'is_nifti_path', 'list_volumes', 'load_volume', 'read_geometry',
    'volume_stem'
]
