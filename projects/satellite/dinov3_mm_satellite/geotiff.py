"""Reading and writing multispectral GeoTIFFs with tifffile.

Band layouts understood on reading: pixel-interleaved ``(H, W, B)``
(PlanarConfiguration 1), band-sequential ``(B, H, W)`` (PlanarConfiguration 2)
and one page per band; arrays are always returned as ``(H, W, B)``. Band
names come from GDAL's per-band descriptions (GDAL_METADATA tag 42112) when
the file has them.
"""
import logging
import os
import os.path as osp
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tifffile
from mmengine.logging import print_log

from .georef import GeoReference, GeoReferenceError

GDAL_METADATA = 42112
BAND_LAYOUTS = ('last', 'first')


class GeoTIFFError(ValueError):
    """A GeoTIFF cannot be used as asked; the message names the file."""


@dataclass
class RasterInfo:
    """What a GeoTIFF header says, without reading the pixels.

    Attributes:
        path (str): The file.
        height (int): Rows.
        width (int): Columns.
        bands (int): Bands (1 for a single-band raster).
        dtype (np.dtype): Pixel type.
        axes (str): tifffile's axes of the first series, e.g. ``'YXS'``.
        georef (GeoReference, optional): None when not georeferenced.
        band_names (tuple[str], optional): GDAL band descriptions.
    """
    path: str
    height: int
    width: int
    bands: int
    dtype: np.dtype
    axes: str
    georef: Optional[GeoReference]
    band_names: Optional[Tuple[str, ...]] = None

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(H, W, B)``."""
        return self.height, self.width, self.bands


def _band_axis(axes: str, shape: Sequence[int], path: str) -> Optional[int]:
    """Index of the band axis in the series shape; None for 2-D rasters."""
    if len(shape) == 2:
        return None
    if len(shape) != 3 or 'Y' not in axes or 'X' not in axes:
        raise GeoTIFFError(
            f'{path}: expected a 2-D or 3-D raster (rows, columns and '
            f'optionally bands), found shape {tuple(shape)} with axes '
            f'{axes!r}. Write one multi-band image per file.')
    return next(i for i, a in enumerate(axes) if a not in 'YX')


def _band_names(page) -> Optional[Tuple[str, ...]]:
    tag = page.tags.get(GDAL_METADATA)
    if tag is None:
        return None
    try:
        root = ET.fromstring(tag.value)
    except ET.ParseError:
        return None
    names = {}
    for item in root.iter('Item'):
        if (item.get('role') == 'description'
                and item.get('sample') is not None):
            names[int(item.get('sample'))] = (item.text or '').strip()
    if not names:
        return None
    return tuple(names.get(i, '') for i in range(max(names) + 1))


def _open(path: str) -> tifffile.TiffFile:
    if not osp.isfile(path):
        raise FileNotFoundError(f'GeoTIFF {path} does not exist.')
    try:
        return tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError) as exc:
        raise GeoTIFFError(f'{path} is not a readable TIFF: {exc}') from exc


def _info_from(tif: tifffile.TiffFile, path: str) -> RasterInfo:
    if not tif.series:  # e.g. a corrupt offset to the first page
        raise GeoTIFFError(f'{path} is not a readable TIFF: it holds no '
                           'image (corrupt or truncated file).')
    series = tif.series[0]
    axes, shape = series.axes, tuple(series.shape)
    axis = _band_axis(axes, shape, path)
    rows, cols = shape[axes.index('Y')], shape[axes.index('X')]
    page = tif.pages[0]
    tags = {tag.code: tag.value for tag in page.tags.values()}
    try:
        georef = GeoReference.from_tags(tags, source=path)
    except GeoReferenceError as exc:
        raise GeoTIFFError(str(exc)) from exc
    return RasterInfo(
        path=path,
        height=int(rows),
        width=int(cols),
        bands=1 if axis is None else int(shape[axis]),
        dtype=np.dtype(series.dtype),
        axes=axes,
        georef=georef,
        band_names=_band_names(page))


def read_info(path: str) -> RasterInfo:
    """Read a GeoTIFF header: size, band count, dtype and georeference.

    Raises:
        FileNotFoundError: No such file.
        GeoTIFFError: Not a TIFF, not a 2-D/3-D raster, or malformed
            georeferencing tags.
    """
    with _open(path) as tif:
        return _info_from(tif, path)


def _to_hwb(data: np.ndarray, info: RasterInfo) -> np.ndarray:
    axis = _band_axis(info.axes, data.shape, info.path)
    if axis is None:
        return data[..., None]
    order = [info.axes.index('Y'), info.axes.index('X'), axis]
    return np.moveaxis(data, order, [0, 1, 2])


def check_georef(info: RasterInfo,
                 what: str = 'this operation') -> GeoReference:
    """The georeference of ``info``, or an error saying it is required.

    Args:
        info (RasterInfo): From :func:`read_info`.
        what (str): What needs it, for the message.

    Raises:
        GeoTIFFError: The file has no georeferencing tags.
    """
    if info.georef is None or info.georef.geotransform is None:
        raise GeoTIFFError(
            f'{info.path} has no georeferencing (no ModelPixelScaleTag + '
            'ModelTiepointTag or ModelTransformationTag), which '
            f'{what} requires. Use a georeferenced GeoTIFF, or turn the '
            'requirement off (require_georef=False / --allow-no-georef) to '
            'write an output without CRS and geotransform.')
    return info.georef


def read_geotiff(path: str,
                 require_georef: bool = False
                 ) -> Tuple[np.ndarray, RasterInfo]:
    """Read a whole GeoTIFF as ``(H, W, B)`` with its header.

    Args:
        path (str): The file.
        require_georef (bool): Raise when the file is not georeferenced.
            Defaults to False.

    Returns:
        tuple[np.ndarray, RasterInfo]: Pixels in the file's dtype and the
        header (``info.georef`` is None without georeferencing).
    """
    with _open(path) as tif:
        info = _info_from(tif, path)
        if require_georef:
            check_georef(info, 'reading with require_georef=True')
        data = tif.series[0].asarray()
    return _to_hwb(data, info), info


class RasterReader:
    """Windowed reads of a large GeoTIFF.

    Uncompressed, contiguously stored files are memory-mapped, so only the
    windows read are paged in. Other files (compressed or tiled) are read
    whole once, in their own dtype, on the first :meth:`read`; a log line
    says so.

    Args:
        path (str): The GeoTIFF.
    """

    def __init__(self, path: str) -> None:
        self.info = read_info(path)
        self.path = path
        self._data: Optional[np.ndarray] = None
        self.memory_mapped = False

    def _array(self) -> np.ndarray:
        if self._data is None:
            try:
                self._data = _to_hwb(tifffile.memmap(self.path, mode='r'),
                                     self.info)
                self.memory_mapped = True
            except ValueError:
                print_log(
                    f'{self.path} is compressed or not contiguous; reading '
                    f'it whole ({self.info.height}x{self.info.width}x'
                    f'{self.info.bands} {self.info.dtype}). Store scenes '
                    'uncompressed to stream them window by window.',
                    logger='current', level=logging.WARNING)
                self._data, _ = read_geotiff(self.path)
        return self._data

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of every band as an ``(h, w, B)`` copy."""
        return np.array(self._array()[y0:y1, x0:x1])

    def close(self) -> None:
        """Drop the memory map (or the in-memory copy)."""
        self._data = None

    def __enter__(self) -> 'RasterReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gdal_metadata(band_names: Sequence[str]) -> str:
    root = ET.Element('GDALMetadata')
    for i, name in enumerate(band_names):
        item = ET.SubElement(root, 'Item', name='DESCRIPTION', sample=str(i),
                             role='description')
        item.text = str(name)
    return ET.tostring(root, encoding='unicode')


def write_geotiff(path: str,
                  data: np.ndarray,
                  georef: Optional[GeoReference] = None,
                  band_names: Optional[Sequence[str]] = None,
                  band_layout: str = 'last',
                  compression: Optional[str] = None) -> str:
    """Write an ``(H, W)`` or ``(H, W, B)`` array as a GeoTIFF.

    Args:
        path (str): Output file (folders are created).
        data (np.ndarray): Pixels, ``(H, W)`` or ``(H, W, B)``.
        georef (GeoReference, optional): Written as the GeoTIFF tags of
            :data:`~.georef.GEO_TAGS` (and GDAL_NODATA).
        band_names (Sequence[str], optional): Stored as GDAL band
            descriptions (GDAL_METADATA).
        band_layout (str): ``'last'`` stores pixel-interleaved
            (PlanarConfiguration 1), ``'first'`` band-sequential
            (PlanarConfiguration 2). Defaults to ``'last'``.
        compression (str, optional): tifffile compression, e.g. ``'zlib'``;
            None writes uncompressed (memory-mappable) data.

    Returns:
        str: ``path``.
    """
    if band_layout not in BAND_LAYOUTS:
        raise ValueError(f'band_layout={band_layout!r}; expected one of '
                         f'{BAND_LAYOUTS}.')
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise GeoTIFFError(f'{path}: data must be (H, W) or (H, W, B), got '
                           f'shape {data.shape}.')
    bands = 1 if data.ndim == 2 else data.shape[2]
    extratags = list(georef.to_extratags()) if georef is not None else []
    if band_names is not None:
        if len(band_names) != bands:
            raise GeoTIFFError(
                f'{path}: {len(band_names)} band names for {bands} bands.')
        extratags.append(
            (GDAL_METADATA, 's', 0, _gdal_metadata(band_names), True))
    kwargs = dict(photometric='minisblack', metadata=None,
                  extratags=extratags, compression=compression)
    if data.ndim == 3:
        if band_layout == 'first':
            data = np.ascontiguousarray(np.moveaxis(data, 2, 0))
            kwargs['planarconfig'] = 'separate'
        else:
            kwargs['planarconfig'] = 'contig'
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tifffile.imwrite(path, data, **kwargs)
    return path


def read_mask(path: str) -> np.ndarray:
    """Read a single-band mask GeoTIFF as ``(H, W)``.

    Raises:
        GeoTIFFError: The file has more than one band.
    """
    data, info = read_geotiff(path)
    if info.bands != 1:
        raise GeoTIFFError(
            f'Mask {path} has {info.bands} bands; a mask must be a single '
            'band of class indices.')
    return data[..., 0]


def _check_mask_target(path: str, shape: Tuple[int, ...],
                       georef: Optional[GeoReference],
                       expected_shape: Optional[Tuple[int, int]],
                       require_georef: bool, scene: Optional[str]) -> None:
    source = scene or (georef.source if georef is not None else path)
    if len(shape) != 2:
        raise GeoTIFFError(f'Mask for {source} must be (H, W), got shape '
                           f'{tuple(shape)}.')
    if expected_shape is not None and tuple(shape) != tuple(
            expected_shape[:2]):
        raise GeoTIFFError(
            f'Mask for {source} is {shape[0]}x{shape[1]} (HxW) but the scene '
            f'is {expected_shape[0]}x{expected_shape[1]}; a geo mask must '
            'cover its scene pixel for pixel.')
    if require_georef and (georef is None or georef.geotransform is None):
        raise GeoTIFFError(
            f'Cannot write geo mask {path}: scene {source} has no '
            'georeferencing (no ModelPixelScaleTag + ModelTiepointTag or '
            'ModelTransformationTag). Use a georeferenced scene, or pass '
            'require_georef=False (--allow-no-georef) to write a plain TIFF.')


def write_mask_geotiff(path: str,
                       mask: np.ndarray,
                       georef: Optional[GeoReference],
                       expected_shape: Optional[Tuple[int, int]] = None,
                       require_georef: bool = True,
                       scene: Optional[str] = None,
                       compression: Optional[str] = None) -> str:
    """Write a class mask with its scene's georeference.

    Args:
        path (str): Output GeoTIFF.
        mask (np.ndarray): ``(H, W)`` class indices (or confidences).
        georef (GeoReference, optional): The scene's georeference; its tags
            are copied, so CRS and geotransform equal the scene's.
        expected_shape (tuple[int, int], optional): The scene's ``(H, W)``;
            a mask of another size is an error.
        require_georef (bool): Refuse to write without georeferencing.
            Defaults to True.
        scene (str, optional): The scene file, for messages.
        compression (str, optional): tifffile compression, e.g. ``'zlib'``.

    Raises:
        GeoTIFFError: No georeference while required, or a size mismatch.
    """
    mask = np.asarray(mask)
    _check_mask_target(path, mask.shape, georef, expected_shape,
                       require_georef, scene)
    return write_geotiff(path, mask, georef=georef, compression=compression)


def create_mask_memmap(path: str,
                       shape: Tuple[int, int],
                       dtype,
                       georef: Optional[GeoReference],
                       require_georef: bool = True,
                       scene: Optional[str] = None) -> np.memmap:
    """Create an uncompressed single-band GeoTIFF and memory-map its pixels.

    Rows assigned to the returned array go straight to the file, so a scene
    mask is written without holding it in memory. The checks are those of
    :func:`write_mask_geotiff`.

    Args:
        path (str): Output GeoTIFF.
        shape (tuple[int, int]): ``(H, W)`` of the scene.
        dtype: Pixel type, e.g. ``np.uint8``.
        georef (GeoReference, optional): The scene's georeference.
        require_georef (bool): Refuse without georeferencing. Defaults to
            True.
        scene (str, optional): The scene file, for messages.

    Returns:
        np.memmap: Writable ``(H, W)`` view of the file's pixels; call
        ``flush()`` (or drop it) when done.
    """
    _check_mask_target(path, tuple(shape), georef, None, require_georef,
                       scene)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    extratags = list(georef.to_extratags()) if georef is not None else []
    return tifffile.memmap(path, shape=tuple(shape), dtype=dtype,
                           photometric='minisblack', metadata=None,
                           extratags=extratags)


def geotiff_tags(path: str, codes: Sequence[int]) -> dict:
    """``{code: value}`` of the tags of ``path``'s first page among ``codes``
    (for comparing the georeferencing of two files)."""
    with _open(path) as tif:
        tags = tif.pages[0].tags
        return {c: tags[c].value for c in codes if c in tags}


def list_band_names(info: RasterInfo) -> List[str]:
    """The file's band names, or ``['band_0', ...]`` without descriptions."""
    if info.band_names and len(info.band_names) == info.bands:
        return list(info.band_names)
    return [f'band_{i}' for i in range(info.bands)]
