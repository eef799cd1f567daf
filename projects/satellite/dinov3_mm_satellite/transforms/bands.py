"""Band selection and per-band normalisation of multispectral images.

Both transforms act on each pixel independently (``pixelwise = True``), so
tiled scene inference applies them window by window.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from dinov3_mm.registry import TRANSFORMS
from ..bands import band_statistics, resolve_band_indices


@TRANSFORMS.register_module()
class SelectBands(BaseTransform):
    """Keep (and reorder) bands, selected by index or by name.

    Required Keys:

    - img (``(H, W, B)``)

    Optional Keys:

    - band_names (needed to select by name), img_path (messages)

    Modified Keys:

    - img (``(H, W, len(bands))``)
    - band_names

    Args:
        bands (Sequence[int | str]): Indices (0-based) or names, in the
            order wanted, e.g. ``('B4', 'B3', 'B2', 'B8')``.

    Raises:
        ValueError: The image has fewer bands than the selection asks for,
            or a name is unknown; the message names the file.
    """

    pixelwise = True

    def __init__(self, bands: Sequence[Union[int, str]]) -> None:
        if isinstance(bands, (str, int)) or not len(bands):
            raise ValueError(f'bands={bands!r} must be a non-empty sequence '
                             'of indices or names.')
        self.bands = tuple(bands)

    def transform(self, results: dict) -> dict:
        """Index the band axis."""
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        names = results.get('band_names')
        indices = resolve_band_indices(self.bands, img.shape[2], names,
                                       results.get('img_path', '<image>'))
        results['img'] = np.ascontiguousarray(img[..., indices])
        if names is not None:
            results['band_names'] = tuple(names[i] for i in indices)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(bands={self.bands})'


@TRANSFORMS.register_module()
class NormalizeBands(BaseTransform):
    """Per-band normalisation ``(clip(img * scale) - mean) / std``.

    The result is float32 and is what the backbone sees: configure the
    model's ``SegDataPreprocessor`` with ``normalization=None`` (no mean or
    std), because mmengine's image preprocessor only normalises 1 or 3
    channels.

    Statistics (see :func:`~dinov3_mm_satellite.bands.band_statistics`):
    ``preset='sat493m'`` puts the SAT-493M RGB constants (mean 0.430,
    0.411, 0.296; std 0.213, 0.156, 0.143, 0-1 reflectance) on the bands at
    ``rgb_indices`` and ``extra_mean`` / ``extra_std`` on the others, in
    order; or give ``mean`` and ``std`` for every band.

    Required Keys:

    - img (``(H, W, B)``)

    Optional Keys:

    - nodata_mask (pixels set to 0, the mean, with ``fill_nodata``)
    - img_path (messages)

    Modified Keys:

    - img (float32)

    Args:
        preset (str, optional): ``'sat493m'`` or ``'lvd1689m'``.
        mean, std (Sequence[float], optional): Per-band values (after
            ``scale``), overriding the preset.
        extra_mean, extra_std (Sequence[float]): Values of the non-RGB
            bands with a preset.
        rgb_indices (Sequence[int]): Positions of R, G and B. Defaults to
            ``(0, 1, 2)``.
        scale (float): Multiplier bringing raw values to the statistics'
            scale, e.g. ``1e-4`` for reflectance stored as ``value * 10000``
            or ``1 / 255`` for 8-bit. Defaults to 1.
        clip (tuple[float, float], optional): Clip after scaling, e.g.
            ``(0, 1)``.
        fill_nodata (bool): Set no-data pixels to 0. Defaults to True.

    Raises:
        ValueError: The image's band count differs from the statistics';
            the message names the file.
    """

    pixelwise = True

    def __init__(self,
                 preset: Optional[str] = None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 extra_mean: Sequence[float] = (),
                 extra_std: Sequence[float] = (),
                 rgb_indices: Sequence[int] = (0, 1, 2),
                 scale: float = 1.0,
                 clip: Optional[Tuple[float, float]] = None,
                 fill_nodata: bool = True) -> None:
        num_bands = len(mean) if mean is not None else 3 + len(extra_mean)
        self.mean, self.std = band_statistics(
            num_bands, preset, mean, std, extra_mean, extra_std, rgb_indices)
        self.preset = preset
        self.scale = float(scale)
        self.clip = tuple(clip) if clip is not None else None
        self.fill_nodata = fill_nodata

    @property
    def num_bands(self) -> int:
        """Bands the statistics cover."""
        return len(self.mean)

    def transform(self, results: dict) -> dict:
        """Scale, clip and standardise every band."""
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[2] != self.num_bands:
            raise ValueError(
                f'{results.get("img_path", "<image>")} has {img.shape[2]} '
                f'band(s) here but NormalizeBands has statistics for '
                f'{self.num_bands}; make the band selection and the mean/std '
                'lists (and the backbone in_channels) agree.')
        out = img.astype(np.float32) * np.float32(self.scale)
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        out -= self.mean
        out /= self.std
        nodata = results.get('nodata_mask')
        if self.fill_nodata and nodata is not None:
            out[nodata] = 0.0
        results['img'] = out
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mean={self.mean.tolist()}, '
                f'std={self.std.tolist()}, scale={self.scale}, '
                f'clip={self.clip})')
