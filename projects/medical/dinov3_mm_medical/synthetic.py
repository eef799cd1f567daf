"""A small synthetic MRI-like head volume set, written as NIfTI.

Each case is a head phantom: scalp (bright) and skull (dark) shells
labelled background, brain tissue with a smooth texture, two ventricles of
dark cerebrospinal fluid and, in most cases, a bright lesion; a smooth bias
field and Rician-like noise make it look like a T1 scan. The ends of the
volume along the third axis hold no brain, so there are empty slices.

Files (the layout :class:`~dinov3_mm_medical.datasets.VolumeSliceDataset`
reads)::

    <out>/images/{train,val}/case_XXX.nii.gz   int16 intensities
    <out>/labels/{train,val}/case_XXX.nii.gz   uint8 labels 0..3

The affine is not the identity: anisotropic voxels, the first two axes
stored flipped (L and P instead of R and A) and a small in-plane rotation,
with qform and sform set (code 1, scanner) in millimetres.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

MRI_CLASSES = ('background', 'brain', 'csf', 'lesion')
MRI_PALETTE = [[0, 0, 0], [70, 130, 180], [255, 215, 0], [220, 20, 60]]
DEFAULT_SHAPE = (64, 64, 32)
DEFAULT_SPACING = (2.0, 2.0, 4.0)

_INTENSITY = dict(scalp=700.0, skull=120.0, brain=550.0, csf=180.0,
                  lesion=850.0)


def synthetic_affine(shape: Sequence[int],
                     spacing: Sequence[float] = DEFAULT_SPACING,
                     angle_deg: float = 8.0) -> np.ndarray:
    """Voxel to RAS+ affine: axes 0 and 1 flipped (LPS-like storage), a
    rotation of ``angle_deg`` about the third axis, centred on the origin."""
    theta = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0.0],
                         [np.sin(theta), np.cos(theta), 0.0],
                         [0.0, 0.0, 1.0]])
    linear = rotation @ np.diag([-spacing[0], -spacing[1], spacing[2]])
    centre = (np.asarray(shape, np.float64) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ centre + np.array([1.5, -12.0, 20.0])
    return affine


def _grid(shape: Sequence[int]) -> Tuple[np.ndarray, ...]:
    """Coordinates in [-1, 1] along each axis (broadcastable)."""
    return tuple(
        np.linspace(-1.0, 1.0, n).reshape([-1 if a == i else 1
                                           for a in range(3)])
        for i, n in enumerate(shape))


def _ellipsoid(coords, centre, radii) -> np.ndarray:
    return sum(((c - m) / r)**2 for c, m, r in zip(coords, centre, radii)) <= 1


def _smooth_field(coords, rng: np.random.Generator, terms: int = 6,
                  max_freq: float = 4.0) -> np.ndarray:
    """A smooth random field in about [-1, 1] (a sum of random cosines)."""
    field = 0.0
    for _ in range(terms):
        freq = rng.uniform(-max_freq, max_freq, size=3)
        phase = rng.uniform(0, 2 * np.pi)
        field = field + np.cos(sum(f * c for f, c in zip(freq, coords)) +
                               phase)
    return field / np.sqrt(terms)


def make_mri_volume(shape: Sequence[int] = DEFAULT_SHAPE,
                    seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """One synthetic head.

    Args:
        shape (sequence[int]): Voxel grid ``(I, J, K)``; K is the
            head-to-neck axis.
        seed (int): Random seed of the case.

    Returns:
        tuple: ``(image, labels)``: int16 intensities and uint8 labels
        (0 background, 1 brain, 2 csf, 3 lesion), both ``shape``.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    coords = _grid(shape)
    scale = rng.uniform(0.9, 1.05)
    centre = rng.uniform(-0.05, 0.05, size=3)
    head_r = np.array([0.85, 0.92, 0.78]) * scale
    head = _ellipsoid(coords, centre, head_r)
    skull = _ellipsoid(coords, centre, head_r * 0.93)
    brain = _ellipsoid(coords, centre, head_r * 0.85)
    csf = np.zeros(shape, bool)
    for side in (-1, 1):
        offset = centre + np.array([0.13 * side, 0.05, 0.08]) * scale
        csf |= _ellipsoid(coords, offset, np.array([0.08, 0.25, 0.2]) * scale)
    csf &= brain
    lesion = np.zeros(shape, bool)
    if rng.random() < 0.8:
        radius = rng.uniform(0.1, 0.16) * scale
        for _ in range(100):  # a spot inside the brain, off the ventricles
            spot = centre + rng.uniform(-0.5, 0.5, size=3) * head_r
            candidate = _ellipsoid(coords, spot, [radius] * 3)
            if not (candidate & ~brain).any() and not (candidate & csf).any():
                lesion = candidate
                break
    labels = np.zeros(shape, np.uint8)
    labels[brain] = 1
    labels[csf] = 2
    labels[lesion] = 3

    image = np.zeros(shape, np.float64)
    image[head] = _INTENSITY['scalp']
    image[skull] = _INTENSITY['skull']
    image[brain] = _INTENSITY['brain']
    image = image + 40.0 * _smooth_field(coords, rng) * brain
    image[csf] = _INTENSITY['csf']
    image[lesion] = _INTENSITY['lesion']
    bias = 1.0 + 0.15 * _smooth_field(coords, rng, terms=2, max_freq=1.0)
    image = image * bias
    sigma = 20.0
    real = image + rng.normal(0, sigma, shape)
    imag = rng.normal(0, sigma, shape)
    image = np.sqrt(real**2 + imag**2)  # Rician magnitude noise
    return np.rint(image).astype(np.int16), labels


def _save(data: np.ndarray, affine: np.ndarray, path: str) -> None:
    import nibabel as nib
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units('mm', 'sec')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    nib.save(image, path)


def write_mri_volumes(out_dir: str,
                      num_train: int = 6,
                      num_val: int = 2,
                      shape: Sequence[int] = DEFAULT_SHAPE,
                      spacing: Sequence[float] = DEFAULT_SPACING,
                      seed: int = 0) -> Dict[str, List[Tuple[str, str]]]:
    """Write a train and a validation split of synthetic heads.

    Args:
        out_dir (str): Root folder (created).
        num_train (int): Training cases. Defaults to 6.
        num_val (int): Validation cases. Defaults to 2.
        shape (sequence[int]): Voxel grid per case. Defaults to
            ``(64, 64, 32)``.
        spacing (sequence[float]): Voxel size in mm. Defaults to
            ``(2, 2, 4)``.
        seed (int): Seed; case ``n`` uses ``seed + n``. Defaults to 0.

    Returns:
        dict: ``{'train': [(image, labels), ...], 'val': [...]}`` paths.
    """
    if num_train < 0 or num_val < 0 or num_train + num_val == 0:
        raise ValueError('Give at least one case (num_train + num_val > 0).')
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f'shape={tuple(shape)} must be three positive '
                         'sizes.')
    affine = synthetic_affine(shape, spacing)
    written: Dict[str, List[Tuple[str, str]]] = dict(train=[], val=[])
    case = 0
    for split, count in (('train', num_train), ('val', num_val)):
        for _ in range(count):
            image, labels = make_mri_volume(shape, seed + case)
            name = f'case_{case:03d}.nii.gz'
            img_path = osp.join(out_dir, 'images', split, name)
            lbl_path = osp.join(out_dir, 'labels', split, name)
            _save(image, affine, img_path)
            _save(labels, affine, lbl_path)
            written[split].append((img_path, lbl_path))
            case += 1
    return written
