"""NIfTI volumes: reading (affine and header kept) and writing label maps
on the grid of a reference volume."""
import os
import os.path as osp
from typing import Optional

import numpy as np

from .volume import Volume, as_label_array

#: NIfTI intent code of a label map (NIFTI_INTENT_LABEL).
INTENT_LABEL = 'label'


def _squeeze_to_3d(shape, path: str) -> tuple:
    shape = tuple(int(s) for s in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) == 2:
        shape = shape + (1, )
    if len(shape) != 3:
        raise ValueError(
            f'NIfTI file {path} has shape {shape}; expected a 3D volume. '
            'Split 4D (multi-channel or time series) files into one 3D '
            'volume per file.')
    return shape


def read_nifti(path: str, label: bool = False,
               read_data: bool = True) -> Volume:
    """Read a ``.nii`` / ``.nii.gz`` file.

    Args:
        path (str): The file.
        label (bool): Integer label voxels (:func:`as_label_array`) instead
            of float32 intensities (scaled by ``scl_slope`` /
            ``scl_inter``). Defaults to False.
        read_data (bool): False reads the header only (``data`` None).
            Defaults to True.

    Returns:
        Volume: ``kind='nifti'`` with the file's ``affine`` (its best
        affine: sform, else qform) and a copy of its ``header``.

    Raises:
        ValueError: the file cannot be read or is not 3D; the message names
            it.
    """
    import nibabel as nib
    try:
        image = nib.load(path)
    except Exception as exc:  # nibabel raises several types
        raise ValueError(f'Cannot read NIfTI file {path}: {exc}') from exc
    shape = _squeeze_to_3d(image.shape, path)
    data = None
    if read_data:
        try:
            if label:
                data = as_label_array(
                    np.asanyarray(image.dataobj).reshape(shape), path)
            else:
                data = np.asarray(image.get_fdata(dtype=np.float32)).reshape(
                    shape)
        except ValueError:
            raise
        except Exception as exc:  # truncated gzip, short file, ...
            raise ValueError(
                f'Cannot read the voxels of NIfTI file {path}: {exc}') from exc
    return Volume(data=data, affine=np.asarray(image.affine, np.float64),
                  path=path, kind='nifti', shape=shape,
                  header=image.header.copy())


def label_dtype(labels: np.ndarray) -> np.dtype:
    """``uint8`` when every label fits in 0..255, else ``int16``.

    Raises:
        ValueError: a label lies outside the int16 range.
    """
    labels = np.asarray(labels)
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0,
                                                                            0)
    if low >= 0 and high <= 255:
        return np.dtype(np.uint8)
    if low >= -32768 and high <= 32767:
        return np.dtype(np.int16)
    raise ValueError(f'Labels span {low}..{high}, outside the int16 range of '
                     'a NIfTI label map.')


def write_label_nifti(labels: np.ndarray, reference: Volume, out_path: str,
                      description: Optional[str] = 'dinov3_mm prediction'
                      ) -> str:
    """Write a label map on the grid of ``reference`` as NIfTI.

    A NIfTI reference's header is copied (dimensions, ``pixdim``, units,
    ``qform`` / ``sform`` and their codes stay as they were); only the data
    type (``uint8`` or ``int16``, see :func:`label_dtype`), the scaling
    (slope 1, intercept 0), the intent (label) and ``descrip`` change. A
    DICOM reference gets a new header with its affine as qform and sform
    (code 1, scanner) in millimetres.

    Args:
        labels (np.ndarray): Integer labels, ``reference.shape``.
        reference (Volume): The volume the labels were predicted on.
        out_path (str): ``.nii`` or ``.nii.gz`` file (folders are created).
        description (str, optional): Written to ``descrip`` (80 bytes).

    Returns:
        str: ``out_path``.

    Raises:
        ValueError: ``labels`` does not have the reference's shape.
    """
    import nibabel as nib
    labels = np.asarray(labels)
    if tuple(labels.shape) != tuple(reference.shape):
        raise ValueError(
            f'Labels of shape {labels.shape} cannot be written on the grid '
            f'of {reference.path} (shape {reference.shape}).')
    dtype = label_dtype(labels)
    if reference.header is not None and isinstance(
            reference.header, (nib.Nifti1Header, nib.Nifti2Header)):
        header = reference.header.copy()
        image_class = (nib.Nifti2Image if isinstance(header, nib.Nifti2Header)
                       else nib.Nifti1Image)
        # a 4D reference with trailing singleton dims keeps them
        data = labels.astype(dtype).reshape(header.get_data_shape())
        header.set_data_dtype(dtype)
        image = image_class(data, reference.affine, header)
    else:
        image = nib.Nifti1Image(labels.astype(dtype), reference.affine)
        image.set_qform(reference.affine, code=1)
        image.set_sform(reference.affine, code=1)
        image.header.set_xyzt_units('mm')
        image.header.set_data_dtype(dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header.set_intent(INTENT_LABEL)
    image.header['cal_min'] = 0
    image.header['cal_max'] = 0
    if description is not None:
        image.header['descrip'] = description.encode('ascii', 'replace')[:79]
    folder = osp.dirname(osp.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    nib.save(image, out_path)
    return out_path
