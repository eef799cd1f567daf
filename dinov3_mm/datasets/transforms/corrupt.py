"""ImageNet-C corruptions as a pipeline step, for robustness evaluation.

The 15 corruption families of Hendrycks & Dietterich (ICLR 2019) at
severities 1-5 come from ``imagecorruptions-imaug`` (PyPI,
Apache-2.0, about 2 MB with the six frost textures it bundles): the
maintained fork of bethgelab's ``imagecorruptions``, with the reference
parameters of ImageNet-C. It was chosen over the original package and
over albumentations because:

- the original ``imagecorruptions`` 1.1.2 (2020) no longer imports: it
  needs ``pkg_resources`` (gone from current setuptools), and its glass blur
  calls scikit-image with the ``multichannel`` argument removed in 0.19;
- the fork fixes both, takes a seed for its own random draws (impulse
  noise, glass blur) and compiles glass blur's pixel shuffle with numba
  (tens of milliseconds per image instead of seconds);
- albumentations has no frost and no severity scale: its transforms would
  need parameters of our own, so results would not compare with published
  ImageNet-C numbers.

Its dependencies (scikit-image, scipy, numba) install from wheels with
numpy < 2 and need no system library.

Each image is corrupted with a seed derived from the sample's index (else
its file), the corruption and the severity, so a run is reproducible and
independent of data loader workers and batch order.
"""
import zlib
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

#: The 15 ImageNet-C corruptions, in the benchmark's order.
CORRUPTIONS = ('gaussian_noise', 'shot_noise', 'impulse_noise',
               'defocus_blur', 'glass_blur', 'motion_blur', 'zoom_blur',
               'snow', 'frost', 'fog', 'brightness', 'contrast',
               'elastic_transform', 'pixelate', 'jpeg_compression')
#: The four groups of ImageNet-C.
CORRUPTION_GROUPS = {
    'noise': CORRUPTIONS[0:3],
    'blur': CORRUPTIONS[3:7],
    'weather': CORRUPTIONS[7:11],
    'digital': CORRUPTIONS[11:15],
}
SEVERITIES = (1, 2, 3, 4, 5)
#: The smallest side the corruptions accept.
MIN_SIZE = 32
#: Corruptions of the package that take their own ``seed`` argument.
_SEEDED = ('glass_blur', 'impulse_noise')


def check_corruption(corruption: str, severity: int) -> None:
    """Raise a ``ValueError`` for an unknown corruption or severity.

    The message lists the valid corruptions (or severities).
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f'Unknown corruption {corruption!r}; valid '
                         f'corruptions: {", ".join(CORRUPTIONS)}.')
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f'Corruption severity {severity!r} is not one of '
                         f'{list(SEVERITIES)}.')


def corruption_seed(corruption: str, severity: int, key, seed: int = 0
                    ) -> int:
    """The 32-bit seed of one sample's corruption.

    Args:
        corruption (str): Corruption name.
        severity (int): 1-5.
        key (int | str): The sample's index, or its file path.
        seed (int): Seed of the whole run. Defaults to 0.
    """
    if not isinstance(key, (int, np.integer)):
        key = zlib.crc32(str(key).encode('utf-8'))
    entropy = [int(seed), int(key), CORRUPTIONS.index(corruption),
               int(severity)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _imagecorruptions():
    try:
        import imagecorruptions
    except ImportError as exc:
        raise ImportError(
            'Corrupt needs the imagecorruptions-imaug package: '
            'pip install imagecorruptions-imaug (it is in '
            'requirements/runtime.txt).') from exc
    return imagecorruptions


def corrupt_image(img: np.ndarray, corruption: str, severity: int,
                  seed: int, name: str = 'the image') -> np.ndarray:
    """One ImageNet-C corruption of an image, drawn from ``seed``.

    Args:
        img (np.ndarray): uint8 ``(H, W, 3)`` (RGB) or ``(H, W)`` image,
            both sides at least 32 px.
        corruption (str): One of :data:`CORRUPTIONS`.
        severity (int): 1-5.
        seed (int): Seed of the random draws (32 bit).
        name (str): How errors name the image.

    Returns:
        np.ndarray: uint8 image of the input's shape.

    Raises:
        ValueError: Unknown corruption or severity, or an image of another
            dtype, channel count or smaller than 32 px (the message names
            it).
    """
    check_corruption(corruption, severity)
    if img.dtype != np.uint8:
        raise ValueError(f'Corrupt: {name} is {img.dtype}; the corruptions '
                         'take uint8 images (put Corrupt right after '
                         'LoadImage).')
    gray = img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1)
    if not gray and (img.ndim != 3 or img.shape[2] != 3):
        raise ValueError(f'Corrupt: {name} has shape {img.shape}; the '
                         'corruptions take RGB (H, W, 3) or grey (H, W) '
                         'images.')
    if min(img.shape[:2]) < MIN_SIZE:
        raise ValueError(f'Corrupt: {name} is {img.shape[1]}x{img.shape[0]} '
                         f'px; the corruptions need at least {MIN_SIZE} px '
                         'on each side.')
    package = _imagecorruptions()
    kwargs = dict(seed=seed) if corruption in _SEEDED else {}
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        out = package.corrupt(img.reshape(img.shape[:2]) if gray else img,
                              severity=severity, corruption_name=corruption,
                              **kwargs)
    finally:
        np.random.set_state(state)
    if gray:
        out = out[..., 0].reshape(img.shape)
    return np.ascontiguousarray(out)


@TRANSFORMS.register_module()
class Corrupt(BaseTransform):
    """Apply one ImageNet-C corruption at a fixed severity.

    Put it right after the image is loaded (before resizing): the
    corruptions are defined on the original pixels. Each sample is
    corrupted with its own seed (:func:`corruption_seed` of its
    ``sample_idx``, else its ``img_path``), so the result does not depend on
    data loader workers or batch order. ``tools/test_robustness.py`` inserts
    it into a config's test pipeline and adds ``corruption`` and
    ``severity`` to the packer's ``meta_keys``.

    Required Keys:

    - img (uint8 ``(H, W, 3)`` or ``(H, W)``, both sides >= 32 px)

    Optional Keys:

    - sample_idx
    - img_path

    Modified Keys:

    - img

    Added Keys:

    - corruption (str)
    - severity (int)

    Args:
        corruption (str): One of :data:`CORRUPTIONS`.
        severity (int): 1 (mild) to 5 (strong). Defaults to 1.
        seed (int): Seed of the run, mixed into every sample's seed.
            Defaults to 0.

    Raises:
        ValueError: Unknown corruption (the message lists the valid ones)
            or severity.
    """

    def __init__(self, corruption: str, severity: int = 1,
                 seed: int = 0) -> None:
        check_corruption(corruption, severity)
        self.corruption = corruption
        self.severity = int(severity)
        self.seed = int(seed)

    def transform(self, results: dict) -> Optional[dict]:
        """Corrupt ``results['img']`` and record the corruption."""
        key = results.get('sample_idx')
        if key is None:
            key = results.get('img_path', '')
        name = results.get('img_path') or f'sample {key}'
        seed = corruption_seed(self.corruption, self.severity, key, self.seed)
        results['img'] = corrupt_image(results['img'], self.corruption,
                                       self.severity, seed, name)
        results['corruption'] = self.corruption
        results['severity'] = self.severity
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')


def corruption_list(names: Sequence[str]) -> list:
    """``names`` with group names (``noise``, ``blur``, ``weather``,
    ``digital``) and ``all`` expanded, duplicates removed, checked.

    Raises:
        ValueError: An unknown name; the message lists the valid ones.
    """
    out = []
    for name in names:
        if name == 'all':
            group = CORRUPTIONS
        elif name in CORRUPTION_GROUPS:
            group = CORRUPTION_GROUPS[name]
        else:
            if name not in CORRUPTIONS:
                raise ValueError(
                    f'Unknown corruption {name!r}; valid corruptions: '
                    f'{", ".join(CORRUPTIONS)} (or a group: '
                    f'{", ".join(CORRUPTION_GROUPS)}, or all).')
            group = (name, )
        out += [c for c in group if c not in out]
    return out


#: Short name of :func:`corrupt_image`.
corrupt = corrupt_image
