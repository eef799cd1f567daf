"""NIfTI and DICOM series readers, orientation, label NIfTI writer."""
import numpy as np
import pytest

from dinov3_mm_medical.io import (DicomSeriesError, load_volume,
                                  read_dicom_series, read_geometry,
                                  read_nifti, reorient, reoriented_shape,
                                  undo_reorient, write_label_nifti)


def _stored_ramp(shape=(6, 5, 4)):
    """Stored int16 values, distinct per voxel."""
    i, j, k = np.indices(shape)
    return (10 * i + 100 * j + 1000 * k).astype(np.int16)


# ------------------------------------------------------------------ NIfTI
def test_nifti_keeps_data_affine_and_header(tmp_path, write_nifti,
                                            lps_affine):
    import nibabel as nib
    data = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
    affine = lps_affine()
    path = write_nifti(tmp_path / 'ct.nii.gz', data, affine)
    volume = read_nifti(str(path))
    assert volume.kind == 'nifti' and volume.shape == (4, 3, 2)
    assert volume.data.dtype == np.float32
    np.testing.assert_array_equal(volume.data, data)
    np.testing.assert_allclose(volume.affine, affine, atol=1e-5)
    assert isinstance(volume.header, nib.Nifti1Header)
    assert int(volume.header['sform_code']) == 2
    np.testing.assert_allclose(volume.header['pixdim'][1:4], (0.9, 0.8, 3.0),
                               rtol=1e-6)
    np.testing.assert_allclose(volume.spacing, (0.9, 0.8, 3.0), rtol=1e-6)


def test_nifti_label_reading(tmp_path, write_nifti):
    labels = np.zeros((3, 3, 2), np.float32)
    labels[1, 1, 1] = 3
    path = write_nifti(tmp_path / 'seg.nii.gz', labels)
    volume = read_nifti(str(path), label=True)
    assert volume.data.dtype == np.uint8 and volume.data[1, 1, 1] == 3
    labels[0, 0, 0] = 0.5
    bad = write_nifti(tmp_path / 'soft.nii.gz', labels)
    with pytest.raises(ValueError, match='soft.nii.gz has non-integer'):
        read_nifti(str(bad), label=True)


def test_nifti_errors_name_the_file(tmp_path, write_nifti):
    four_d = write_nifti(tmp_path / 'fmri.nii.gz', np.zeros((3, 3, 2, 5)))
    with pytest.raises(ValueError, match=r'fmri\.nii\.gz has shape '
                       r'\(3, 3, 2, 5\); expected a 3D volume'):
        read_nifti(str(four_d))
    broken = tmp_path / 'broken.nii.gz'
    broken.write_bytes(b'not a nifti file')
    with pytest.raises(ValueError, match='Cannot read NIfTI file .*broken'):
        load_volume(str(broken))
    with pytest.raises(FileNotFoundError, match='missing.nii'):
        load_volume(str(tmp_path / 'missing.nii'))
    other = tmp_path / 'scan.mha'
    other.write_bytes(b'x')
    with pytest.raises(ValueError, match=r'scan\.mha: expected a \.nii'):
        load_volume(str(other))


# ------------------------------------------------------------------ DICOM
def test_dicom_series_sorted_rescaled_with_affine(tmp_path, write_ct_series):
    stored = _stored_ramp()
    series = write_ct_series(tmp_path / 'ct', stored, slope=2.0,
                             intercept=-1024.0)
    volume = read_dicom_series(str(tmp_path / 'ct'))
    assert volume.kind == 'dicom' and volume.shape == (6, 5, 4)
    # HU = stored * slope + intercept, voxel (column, row, slice)
    np.testing.assert_array_equal(volume.data,
                                  stored.astype(np.float32) * 2 - 1024)
    assert volume.data[1, 2, 3] == (10 + 200 + 3000) * 2 - 1024
    np.testing.assert_allclose(volume.affine, series['affine'], atol=1e-3)
    # slice order follows the positions, not the file names
    assert [p.name for p in series['files']] != sorted(
        p.name for p in series['files'])
    assert [str(p) for p in series['files']] == volume.meta['files']
    assert volume.meta['modality'] == 'CT'
    assert volume.meta['slice_spacing'] == pytest.approx(2.5, abs=1e-3)
    np.testing.assert_allclose(volume.spacing, (0.7, 0.6, 2.5), atol=1e-3)
    geometry = read_geometry(str(tmp_path / 'ct'))
    assert geometry.data is None and geometry.shape == (6, 5, 4)
    np.testing.assert_allclose(geometry.affine, volume.affine)


def test_dicom_missing_slice(tmp_path, write_ct_series):
    folder = tmp_path / 'gap'
    series = write_ct_series(folder, _stored_ramp((4, 4, 6)), skip=(3, ))
    before, after = series['files'][2].name, series['files'][3].name
    with pytest.raises(DicomSeriesError) as info:
        read_dicom_series(str(folder))
    message = str(info.value)
    assert str(folder) in message and 'missing slices' in message
    assert f'between {before}' in message and after in message
    assert 'gap of 5.000 mm' in message and '2.500 mm apart' in message


def test_dicom_inconsistent_spacing(tmp_path, write_ct_series):
    folder = tmp_path / 'irregular'
    write_ct_series(folder, _stored_ramp((4, 4, 5)),
                    positions=[0.0, 2.5, 5.0, 6.0, 8.5])
    with pytest.raises(DicomSeriesError,
                       match='inconsistent slice spacing: 1.000 mm'):
        read_dicom_series(str(folder))


def test_dicom_mixed_series(tmp_path, write_ct_series):
    folder = tmp_path / 'mixed'
    first = write_ct_series(folder, _stored_ramp((4, 4, 3)),
                            series_uid='1.2.3.1', name_prefix='A')
    write_ct_series(folder, _stored_ramp((4, 4, 2)), series_uid='1.2.3.2',
                    name_prefix='B')
    with pytest.raises(DicomSeriesError) as info:
        read_dicom_series(str(folder))
    message = str(info.value)
    assert f'DICOM folder {folder} mixes 2 series' in message
    assert '1.2.3.1 (3 files' in message and '1.2.3.2 (2 files' in message
    picked = read_dicom_series(str(folder), series_uid='1.2.3.1')
    assert picked.shape == (4, 4, 3)
    assert picked.meta['files'] == [str(p) for p in first['files']]


def test_dicom_unreadable_and_duplicate(tmp_path, write_ct_series):
    folder = tmp_path / 'junk'
    write_ct_series(folder, _stored_ramp((4, 4, 3)))
    (folder / 'notes.txt').write_text('reconstruction notes\n')
    with pytest.raises(DicomSeriesError,
                       match=r'Cannot read DICOM file .*notes\.txt'):
        read_dicom_series(str(folder))
    folder = tmp_path / 'dup'
    write_ct_series(folder, _stored_ramp((4, 4, 3)),
                    positions=[0.0, 2.5, 2.5])
    with pytest.raises(DicomSeriesError, match='share the slice position'):
        read_dicom_series(str(folder))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(DicomSeriesError, match='empty holds no file'):
        read_dicom_series(str(empty))


# ------------------------------------------------------------ orientation
def test_reorient_round_trip(lps_affine):
    affine = lps_affine()
    data = np.random.default_rng(0).random((5, 6, 7))
    ras, ras_affine = reorient(data, affine, 'RAS')
    import nibabel as nib
    assert nib.aff2axcodes(affine) == ('L', 'P', 'S')
    assert nib.aff2axcodes(ras_affine) == ('R', 'A', 'S')
    assert ras.shape == reoriented_shape(data.shape, affine, 'RAS')
    # the same world point holds the same value
    voxel = np.array([1, 2, 3, 1.0])
    moved = np.linalg.solve(ras_affine, affine @ voxel)[:3]
    assert ras[tuple(np.rint(moved).astype(int))] == data[1, 2, 3]
    np.testing.assert_array_equal(undo_reorient(ras, affine, 'RAS'), data)
    # stored axes (S, L, P): reorienting permutes as well as flips
    permuted = np.zeros((4, 4))
    permuted[2, 0], permuted[0, 1], permuted[1, 2] = 2.5, -0.9, -0.8
    permuted[:, 3] = (5.0, 6.0, 7.0, 1.0)
    ras, ras_affine = reorient(data, permuted, 'RAS')
    assert ras.shape == (6, 7, 5) == reoriented_shape(data.shape, permuted,
                                                      'RAS')
    assert nib.aff2axcodes(ras_affine) == ('R', 'A', 'S')
    moved = np.linalg.solve(ras_affine, permuted @ voxel)[:3]
    assert ras[tuple(np.rint(moved).astype(int))] == data[1, 2, 3]
    np.testing.assert_array_equal(undo_reorient(ras, permuted, 'RAS'), data)
    same, same_affine = reorient(data, affine, None)
    assert same is data and same_affine is affine
    with pytest.raises(ValueError, match="orientation='RAX'"):
        reorient(data, affine, 'RAX')


# --------------------------------------------------------------- writing
def test_label_nifti_keeps_reference_header(tmp_path, write_nifti):
    import nibabel as nib
    path = write_nifti(tmp_path / 'mr.nii', np.zeros((4, 3, 2), np.float32),
                       qform_code=1, sform_code=2)
    reference = read_nifti(str(path))
    labels = np.zeros((4, 3, 2), np.int64)
    labels[3, 2, 1] = 4
    out = write_label_nifti(labels, reference, str(tmp_path / 'o.nii.gz'))
    written = nib.load(out)
    assert written.get_data_dtype() == np.uint8
    assert written.shape == (4, 3, 2)
    np.testing.assert_allclose(written.affine, reference.affine, atol=1e-5)
    for key in ('pixdim', 'qform_code', 'sform_code', 'xyzt_units'):
        np.testing.assert_array_equal(written.header[key],
                                      reference.header[key])
    assert written.header.get_intent()[0] == 'label'
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels)
    labels[0, 0, 0] = 300
    big = nib.load(write_label_nifti(labels, reference,
                                     str(tmp_path / 'big.nii.gz')))
    assert big.get_data_dtype() == np.int16
    assert int(np.asarray(big.dataobj)[0, 0, 0]) == 300
    with pytest.raises(ValueError, match='shape'):
        write_label_nifti(labels[:2], reference, str(tmp_path / 'x.nii'))


def test_label_nifti_from_dicom_reference(tmp_path, write_ct_series):
    import nibabel as nib
    write_ct_series(tmp_path / 'ct', _stored_ramp())
    reference = read_dicom_series(str(tmp_path / 'ct'))
    labels = np.ones(reference.shape, np.uint8)
    written = nib.load(write_label_nifti(labels, reference,
                                         str(tmp_path / 'ct.nii.gz')))
    np.testing.assert_allclose(written.affine, reference.affine, atol=1e-4)
    assert int(written.header['qform_code']) == 1
    assert int(written.header['sform_code']) == 1
    assert written.header.get_xyzt_units()[0] == 'mm'
