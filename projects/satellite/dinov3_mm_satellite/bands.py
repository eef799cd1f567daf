"""Band selection and per-band normalisation statistics.

Presets give the RGB statistics of the released DINOv3 weights on a 0-1
scale (from :data:`dinov3_mm.models.normalization.NORMALIZATION`)::

    'sat493m'  mean (0.430, 0.411, 0.296)  std (0.213, 0.156, 0.143)
    'lvd1689m' mean (0.485, 0.456, 0.406)  std (0.229, 0.224, 0.225)

A preset covers the three bands at ``rgb_indices`` (default the first
three, in R, G, B order); every other band takes, in order, the values of
``extra_mean`` / ``extra_std`` (compute them on your data with
:func:`compute_band_statistics`). Alternatively give ``mean`` and ``std``
for every band.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from dinov3_mm.models import NORMALIZATION

BandSelection = Sequence[Union[int, str]]


def _preset_key(name: str) -> str:
    key = name.lower().replace('-', '').replace('_', '')
    if key not in NORMALIZATION:
        raise ValueError(f'Unknown normalisation preset {name!r}; expected '
                         f'one of {sorted(NORMALIZATION)}.')
    return key


def resolve_band_indices(selection: BandSelection,
                         num_bands: int,
                         band_names: Optional[Sequence[str]] = None,
                         source: str = '<image>') -> List[int]:
    """Turn a selection of band indices and/or names into indices.

    Args:
        selection (Sequence[int | str]): Band indices (0-based, negative
            counts from the end) or names.
        num_bands (int): Bands of the image.
        band_names (Sequence[str], optional): Name of each image band.
        source (str): The image file, for messages.

    Raises:
        ValueError: An index out of range (the image has fewer bands than
            the selection asks for), an unknown name, or names that do not
            match the band count; the message names ``source``.
    """
    if band_names is not None and len(band_names) != num_bands:
        raise ValueError(
            f'{source} has {num_bands} band(s) but {len(band_names)} band '
            f'names {list(band_names)} describe it; it has fewer or more '
            'bands than the config expects.')
    indices = []
    for band in selection:
        if isinstance(band, str):
            if not band_names:
                raise ValueError(
                    f'{source}: band {band!r} selected by name but the '
                    'bands have no names; give band_names to the loader or '
                    'dataset, or select by index.')
            if band not in band_names:
                raise ValueError(
                    f'{source}: no band named {band!r}; its bands are '
                    f'{list(band_names)}.')
            indices.append(list(band_names).index(band))
            continue
        index = int(band)
        if not -num_bands <= index < num_bands:
            raise ValueError(
                f'{source} has {num_bands} band(s) but the band selection '
                f'{list(selection)} asks for index {index}; check the file '
                'or the selection.')
        indices.append(index % num_bands)
    if not indices:
        raise ValueError(f'{source}: the band selection is empty.')
    return indices


def band_statistics(num_bands: int,
                    preset: Optional[str] = None,
                    mean: Optional[Sequence[float]] = None,
                    std: Optional[Sequence[float]] = None,
                    extra_mean: Sequence[float] = (),
                    extra_std: Sequence[float] = (),
                    rgb_indices: Sequence[int] = (0, 1, 2)
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Per-band ``(mean, std)`` arrays for ``num_bands`` bands.

    Args:
        num_bands (int): Bands to normalise.
        preset (str, optional): ``'sat493m'`` or ``'lvd1689m'`` RGB values
            for the bands at ``rgb_indices``.
        mean, std (Sequence[float], optional): One value per band; override
            the preset.
        extra_mean, extra_std (Sequence[float]): Values of the non-RGB
            bands, in band order, when a preset is used.
        rgb_indices (Sequence[int]): Positions of the R, G and B bands.
            Defaults to ``(0, 1, 2)``.

    Raises:
        ValueError: The number of values does not match ``num_bands``.
    """
    if (mean is None) != (std is None):
        raise ValueError('Give both mean and std (one per band), or neither.')
    if mean is not None:
        mean_a = np.asarray(mean, np.float32).reshape(-1)
        std_a = np.asarray(std, np.float32).reshape(-1)
        if not len(mean_a) == len(std_a) == num_bands:
            raise ValueError(
                f'{len(mean_a)} means and {len(std_a)} stds given for '
                f'{num_bands} bands; give one value per band.')
    elif preset is not None:
        values = NORMALIZATION[_preset_key(preset)]
        rgb = [int(i) for i in rgb_indices]
        if len(rgb) != 3 or len(set(rgb)) != 3 or not all(
                0 <= i < num_bands for i in rgb):
            raise ValueError(
                f'rgb_indices={tuple(rgb_indices)} must be three distinct '
                f'band positions below {num_bands}.')
        others = [i for i in range(num_bands) if i not in rgb]
        if not len(extra_mean) == len(extra_std) == len(others):
            raise ValueError(
                f'Preset {preset!r} covers 3 of {num_bands} bands; give '
                f'extra_mean and extra_std with {len(others)} value(s) for '
                f'bands {others} (got {len(extra_mean)} and '
                f'{len(extra_std)}). compute_band_statistics() measures '
                'them on your data.')
        mean_a = np.zeros(num_bands, np.float32)
        std_a = np.zeros(num_bands, np.float32)
        mean_a[rgb], std_a[rgb] = values['mean'], values['std']
        mean_a[others], std_a[others] = extra_mean, extra_std
    else:
        raise ValueError('Give a preset or per-band mean and std.')
    if (std_a <= 0).any():
        raise ValueError(f'Every std must be positive, got {std_a.tolist()}.')
    return mean_a, std_a


def compute_band_statistics(paths: Sequence[str],
                            bands: Optional[BandSelection] = None,
                            scale: float = 1.0,
                            clip: Optional[Tuple[float, float]] = None,
                            band_names: Optional[Sequence[str]] = None
                            ) -> Dict[str, List[float]]:
    """Per-band mean and std over GeoTIFF files, after scaling and clipping
    as :class:`~.transforms.NormalizeBands` does.

    Args:
        paths (Sequence[str]): GeoTIFF files.
        bands (Sequence[int | str], optional): Band selection; all bands by
            default.
        scale (float): Multiplier applied first (e.g. ``1e-4`` for
            reflectance stored as ``value * 10000``). Defaults to 1.
        clip (tuple[float, float], optional): Range clipped to after scaling.
        band_names (Sequence[str], optional): Names for selection by name
            (else the files' GDAL band descriptions).

    Returns:
        dict: ``{'mean': [...], 'std': [...]}``, one value per band.
    """
    from .geotiff import read_geotiff
    if not paths:
        raise ValueError('compute_band_statistics needs at least one file.')
    total = total_sq = None
    count = 0
    for path in paths:
        data, info = read_geotiff(path)
        if bands is not None:
            names = band_names or info.band_names
            data = data[..., resolve_band_indices(bands, info.bands, names,
                                                  path)]
        values = data.reshape(-1, data.shape[-1]).astype(np.float64) * scale
        if clip is not None:
            values = np.clip(values, *clip)
        if total is not None and values.shape[1] != total.shape[0]:
            raise ValueError(f'{path} has {values.shape[1]} bands, the files '
                             f'before it {total.shape[0]}.')
        total = values.sum(0) if total is None else total + values.sum(0)
        sq = (values**2).sum(0)
        total_sq = sq if total_sq is None else total_sq + sq
        count += values.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return dict(mean=[round(float(v), 6) for v in mean],
                std=[round(float(v), 6) for v in std])
