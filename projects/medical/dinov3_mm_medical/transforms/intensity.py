"""Intensity transforms of medical slices: CT windowing, percentile
normalisation and grey to three channels.

They take the float voxel values :class:`LoadVolumeSlice` puts in ``img``
and give uint8 images (0..255) by default, so the core transforms that
follow (``GammaCorrection``, ``ResizeKeepRatioPad``, ``Albumentations``,
``PackSegInputs``) see ordinary 8-bit images. The fixed MRI gamma is the
core ``GammaCorrection(gamma=0.75, prob=1.0)`` placed after
:class:`PercentileNormalize`.
"""
from collections import OrderedDict
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from dinov3_mm.registry import TRANSFORMS

from .windows import apply_window, resolve_window, to_output

PERCENTILE_SCOPES = ('volume', 'slice')


@TRANSFORMS.register_module()
class CTWindow(BaseTransform):
    """Window Hounsfield units: ``[level - width/2, level + width/2]`` maps
    linearly onto 0..255 (or 0..1), values outside are clipped.

    Several presets give one channel each (e.g. brain, subdural and bone as
    the three input channels of a haemorrhage model).

    Required Keys:

    - img (HU, float ``(H, W)`` or ``(H, W, C)``)

    Modified Keys:

    - img (uint8 or float32; ``(H, W, len(preset))`` for a preset list)

    Added Keys:

    - ct_window (list of ``(level, width)``)

    Args:
        preset (str | sequence[str], optional): Name(s) from
            :data:`~dinov3_mm_medical.transforms.windows.WINDOW_PRESETS`:
            brain, subdural, stroke, lung, mediastinum, abdomen /
            soft_tissue, liver, bone.
        level (float, optional): Custom window centre (HU), with ``width``.
        width (float, optional): Custom window width (HU).
        out_dtype (str): ``'uint8'`` or ``'float32'``. Defaults to
            ``'uint8'``.
    """

    def __init__(self,
                 preset: Union[str, Sequence[str], None] = None,
                 level: Optional[float] = None,
                 width: Optional[float] = None,
                 out_dtype: str = 'uint8') -> None:
        if isinstance(preset, (list, tuple)):
            if not preset or level is not None or width is not None:
                raise ValueError('CTWindow: a preset list needs at least one '
                                 'name and no level / width.')
            self.windows = [resolve_window(p) for p in preset]
            self.multi = True
        else:
            self.windows = [resolve_window(preset, level, width)]
            self.multi = False
        to_output(np.zeros(1, np.float32), out_dtype)  # validates it
        self.preset = preset
        self.out_dtype = out_dtype

    def transform(self, results: dict) -> dict:
        """Window ``img``."""
        img = np.asarray(results['img'])
        if self.multi:
            if img.ndim == 3 and img.shape[2] != 1:
                raise ValueError(
                    f'CTWindow: {len(self.windows)} presets make one channel '
                    f'each from a single-channel slice, but img is '
                    f'{img.shape} (2.5D context?). Use one preset with '
                    'context, or several presets without.')
            gray = img.reshape(img.shape[:2])
            img = np.stack([
                apply_window(gray, lvl, wid, self.out_dtype)
                for lvl, wid in self.windows
            ], axis=-1)
        else:
            lvl, wid = self.windows[0]
            img = apply_window(img, lvl, wid, self.out_dtype)
        results['img'] = img
        results['ct_window'] = list(self.windows)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(windows={self.windows}, '
                f'out_dtype={self.out_dtype!r})')


@TRANSFORMS.register_module()
class PercentileNormalize(BaseTransform):
    """Clip intensities to the ``lower`` and ``upper`` percentiles and scale
    that range to 0..255 (or 0..1); the usual MRI normalisation, as MR
    values have no physical unit.

    With ``scope='volume'`` the percentiles are those of the whole volume
    (``results['volume']``, which :class:`LoadVolumeSlice` adds), so every
    slice of a volume gets the same mapping; they are computed once per
    volume (``volume_key``) and kept for the next slices. ``scope='slice'``
    uses the slice's own values.

    Required Keys:

    - img (float ``(H, W)`` or ``(H, W, C)``)
    - volume, volume_key (``scope='volume'``)

    Modified Keys:

    - img (uint8 or float32)

    Added Keys:

    - intensity_range (``(low, high)`` the percentile values)

    Args:
        lower (float): Lower percentile, 0..100. Defaults to 0.5.
        upper (float): Upper percentile, > ``lower``. Defaults to 99.5.
        scope (str): ``'volume'`` or ``'slice'``. Defaults to ``'volume'``.
        nonzero (bool): Only voxels different from 0 count (skull-stripped
            or masked scans with a zero background). Defaults to False.
        out_dtype (str): ``'uint8'`` or ``'float32'``. Defaults to
            ``'uint8'``.
        max_samples (int): Volume percentiles come from at most this many
            evenly strided voxels. Defaults to 2,000,000.
        cache_size (int): Volumes whose percentiles are kept. Defaults
            to 32.
    """

    def __init__(self,
                 lower: float = 0.5,
                 upper: float = 99.5,
                 scope: str = 'volume',
                 nonzero: bool = False,
                 out_dtype: str = 'uint8',
                 max_samples: int = 2_000_000,
                 cache_size: int = 32) -> None:
        if not 0 <= lower < upper <= 100:
            raise ValueError(f'PercentileNormalize: need 0 <= lower < upper '
                             f'<= 100, got lower={lower}, upper={upper}.')
        if scope not in PERCENTILE_SCOPES:
            raise ValueError(f'PercentileNormalize: scope={scope!r}; use one '
                             f'of {PERCENTILE_SCOPES}.')
        to_output(np.zeros(1, np.float32), out_dtype)  # validates it
        self.lower = float(lower)
        self.upper = float(upper)
        self.scope = scope
        self.nonzero = nonzero
        self.out_dtype = out_dtype
        self.max_samples = int(max_samples)
        self.cache_size = int(cache_size)
        self._cache: 'OrderedDict[str, Tuple[float, float]]' = OrderedDict()

    def percentiles(self, values: np.ndarray) -> Tuple[float, float]:
        """``(low, high)`` percentiles of ``values`` (subsampled)."""
        flat = np.asarray(values).reshape(-1)
        if flat.size > self.max_samples:
            flat = flat[::int(np.ceil(flat.size / self.max_samples))]
        if self.nonzero:
            flat = flat[flat != 0]
        if flat.size == 0:
            return 0.0, 0.0
        low, high = np.percentile(flat.astype(np.float64),
                                  [self.lower, self.upper])
        return float(low), float(high)

    def _volume_range(self, results: dict) -> Tuple[float, float]:
        volume = results.get('volume')
        if volume is None:
            raise KeyError(
                "PercentileNormalize(scope='volume') needs results['volume'] "
                '(LoadVolumeSlice adds it); put LoadVolumeSlice first or use '
                "scope='slice'.")
        key = results.get('volume_key')
        if key is not None and key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = self.percentiles(volume)
        if key is not None and self.cache_size > 0:
            self._cache[key] = value
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return value

    def transform(self, results: dict) -> dict:
        """Normalise ``img``."""
        img = np.asarray(results['img'], np.float32)
        low, high = (self._volume_range(results) if self.scope == 'volume'
                     else self.percentiles(img))
        if high > low:
            unit = np.clip((img - np.float32(low)) / np.float32(high - low),
                           0.0, 1.0)
        else:  # a constant volume
            unit = np.zeros_like(img)
        results['img'] = to_output(unit, self.out_dtype)
        results['intensity_range'] = (low, high)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(lower={self.lower}, '
                f'upper={self.upper}, scope={self.scope!r}, '
                f'nonzero={self.nonzero}, out_dtype={self.out_dtype!r})')


@TRANSFORMS.register_module()
class GrayToRGB(BaseTransform):
    """Repeat a single-channel slice to ``num_channels`` (3 for the RGB
    input of DINOv3 weights); an image that already has ``num_channels``
    channels (e.g. 2.5D with ``context=1``, or three CT windows) passes
    unchanged.

    Required Keys:

    - img (``(H, W)``, ``(H, W, 1)`` or ``(H, W, num_channels)``)

    Modified Keys:

    - img (``(H, W, num_channels)``)

    Args:
        num_channels (int): Defaults to 3.
    """

    def __init__(self, num_channels: int = 3) -> None:
        if num_channels < 1:
            raise ValueError(f'GrayToRGB: num_channels={num_channels} must be '
                             '>= 1.')
        self.num_channels = int(num_channels)

    def transform(self, results: dict) -> dict:
        """Repeat the grey channel."""
        img = np.asarray(results['img'])
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3:
            raise ValueError(f'GrayToRGB: img must be (H, W[, C]), got shape '
                             f'{img.shape}.')
        if img.shape[2] == 1:
            img = np.repeat(img, self.num_channels, axis=2)
        elif img.shape[2] != self.num_channels:
            raise ValueError(
                f'GrayToRGB: img has {img.shape[2]} channels (2.5D with '
                f'context={(img.shape[2] - 1) // 2}?) but the model takes '
                f'{self.num_channels}. Use context=1 for 3 channels, or set '
                'the backbone in_channels and the data preprocessor mean/std '
                'to the channel count and GrayToRGB(num_channels=...).')
        results['img'] = np.ascontiguousarray(img)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(num_channels={self.num_channels})'
