"""Loading multispectral GeoTIFF images and their class masks."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from dinov3_mm.datasets.transforms import LoadSegAnnotation
from dinov3_mm.registry import TRANSFORMS
from ..geotiff import (GeoTIFFError, check_georef, read_geotiff, read_info,
                       read_mask)


@TRANSFORMS.register_module()
class LoadMultispectralGeoTIFF(BaseTransform):
    """Read a multispectral GeoTIFF as an ``(H, W, B)`` array.

    Pixel-interleaved ``(H, W, B)``, band-sequential ``(B, H, W)`` and
    page-per-band files are all returned as ``(H, W, B)``.

    Required Keys:

    - img_path

    Optional Keys:

    - band_names (names of the file's bands; set by
      :class:`~dinov3_mm_satellite.GeoTIFFSegDataset`)

    Added Keys:

    - img (float32 ``(H, W, B)``, or the file's dtype without
      ``to_float32``)
    - img_shape, ori_shape (``(H, W)``)
    - georef (:class:`~dinov3_mm_satellite.georef.GeoReference` or None)
    - band_names (the given names, else the file's GDAL band descriptions,
      else None)
    - nodata_mask (bool ``(H, W)``, only when the file has GDAL_NODATA:
      True where every band equals it)

    Args:
        to_float32 (bool): Convert to float32. Defaults to True.
        require_georef (bool): Raise for files without georeferencing.
            Defaults to False.
        num_bands (int, optional): Exact band count the file must have.
        min_bands (int, optional): Smallest band count accepted.
        band_names (Sequence[str], optional): Names of the file's bands,
            overriding ``results['band_names']`` and the file's own.

    Raises:
        GeoTIFFError: Unreadable file, missing georeferencing (when
            required) or unexpected band count; the message names the file.
    """

    def __init__(self,
                 to_float32: bool = True,
                 require_georef: bool = False,
                 num_bands: Optional[int] = None,
                 min_bands: Optional[int] = None,
                 band_names: Optional[Sequence[str]] = None) -> None:
        self.to_float32 = to_float32
        self.require_georef = require_georef
        self.num_bands = num_bands
        self.min_bands = min_bands
        self.band_names = tuple(band_names) if band_names else None

    def transform(self, results: dict) -> dict:
        """Read ``img_path``."""
        path = results['img_path']
        data, info = read_geotiff(path)
        if self.require_georef:
            check_georef(info, 'LoadMultispectralGeoTIFF(require_georef=True)')
        if self.num_bands is not None and info.bands != self.num_bands:
            raise GeoTIFFError(
                f'{path} has {info.bands} band(s), expected {self.num_bands} '
                '(LoadMultispectralGeoTIFF.num_bands); check the file or the '
                'config.')
        if self.min_bands is not None and info.bands < self.min_bands:
            raise GeoTIFFError(
                f'{path} has {info.bands} band(s), fewer than the '
                f'{self.min_bands} the config needs.')
        names = self.band_names or results.get('band_names') or \
            info.band_names
        if names is not None and len(names) != info.bands:
            raise GeoTIFFError(
                f'{path} has {info.bands} band(s) but {len(names)} band '
                f'names {list(names)} were given.')
        if info.georef is not None and info.georef.nodata is not None:
            results['nodata_mask'] = np.all(data == info.georef.nodata, -1)
        results['img'] = data.astype(np.float32) if self.to_float32 else data
        results['img_shape'] = data.shape[:2]
        results['ori_shape'] = data.shape[:2]
        results['georef'] = info.georef
        results['band_names'] = tuple(names) if names is not None else None
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f'require_georef={self.require_georef}, '
                f'num_bands={self.num_bands}, min_bands={self.min_bands})')


@TRANSFORMS.register_module()
class LoadGeoTIFFAnnotation(LoadSegAnnotation):
    """Load a single-band GeoTIFF class mask as ``gt_seg_map``.

    Behaves as :class:`~dinov3_mm.datasets.transforms.LoadSegAnnotation`
    (``reduce_zero_label``, size check against the image, value check
    against ``num_classes``), reading the mask with tifffile, and also:

    * with ``check_georef``, a georeferenced mask must have the CRS and
      geotransform of its georeferenced image;
    * with ``ignore_nodata``, image pixels flagged by ``nodata_mask`` get
      the ignore index.

    Required Keys:

    - seg_map_path

    Optional Keys:

    - img, ori_shape (size check), georef, nodata_mask
    - reduce_zero_label, num_classes, ignore_index

    Added Keys:

    - gt_seg_map, seg_fields

    Args:
        check_georef (bool): Compare the mask's georeference with the
            image's. Defaults to True.
        ignore_nodata (bool): Ignore no-data pixels. Defaults to True.
        **kwargs: :class:`LoadSegAnnotation` arguments (``mask_format`` is
            ``'index'``).

    Raises:
        GeoTIFFError: A multi-band mask, or a mask on another grid.
        ValueError: Size mismatch with the image or values outside the
            classes (from :class:`LoadSegAnnotation`); messages name the
            files.
    """

    def __init__(self,
                 check_georef: bool = True,
                 ignore_nodata: bool = True,
                 **kwargs) -> None:
        kwargs.setdefault('mask_format', 'index')
        super().__init__(**kwargs)
        self.check_georef = check_georef
        self.ignore_nodata = ignore_nodata

    def _read(self, path: str, palette) -> np.ndarray:
        return read_mask(path)

    def transform(self, results: dict) -> dict:
        """Read, check and store the mask."""
        results = super().transform(results)
        path = results.get('seg_map_path')
        image_ref = results.get('georef')
        if path is not None and self.check_georef and image_ref is not None:
            mask_ref = read_info(path).georef
            if mask_ref is not None and not mask_ref.same_grid(image_ref):
                raise GeoTIFFError(
                    f'Mask {path} ({mask_ref.crs}, geotransform '
                    f'{mask_ref.geotransform}) is not on the grid of image '
                    f'{results.get("img_path")} ({image_ref.crs}, '
                    f'{image_ref.geotransform}); re-export the mask on the '
                    'image grid or set check_georef=False.')
        nodata = results.get('nodata_mask')
        if self.ignore_nodata and nodata is not None and nodata.any():
            ignore = self.ignore_index
            if ignore is None:
                ignore = results.get('ignore_index', 255)
            seg = results['gt_seg_map']
            if ignore > np.iinfo(np.uint8).max and seg.dtype == np.uint8:
                seg = seg.astype(np.int64)
            seg = seg.copy()
            seg[nodata] = ignore
            results['gt_seg_map'] = seg
        return results
