"""Segmentation dataset of GeoTIFF tiles and GeoTIFF class masks."""
from typing import List, Optional, Sequence

from dinov3_mm.datasets import SegFolderDataset
from dinov3_mm.registry import DATASETS
from .geotiff import GeoTIFFError, check_georef, read_info


@DATASETS.register_module()
class GeoTIFFSegDataset(SegFolderDataset):
    """Folders of multispectral GeoTIFF tiles and single-band mask GeoTIFFs:
    ``img_dir/<stem>.tif`` paired with ``ann_dir/<stem>.tif`` (layout and
    arguments of :class:`~dinov3_mm.datasets.SegFolderDataset`).

    Every data info also holds ``band_names`` (given, else read from the
    first image's GDAL band descriptions), which
    :class:`~dinov3_mm_satellite.transforms.LoadMultispectralGeoTIFF` and
    :class:`~dinov3_mm_satellite.transforms.SelectBands` use for selection
    by name. With ``check_files`` (default) every pair's header is read when
    the dataset is built, so bad files fail before training starts.

    Args:
        img_suffix (str): Defaults to ``'.tif'``.
        seg_map_suffix (str): Defaults to ``'.tif'``.
        band_names (Sequence[str], optional): Names of the image bands.
        min_bands (int, optional): Bands every image must have at least
            (e.g. the largest index the band selection uses, plus one).
        require_georef (bool): Every image must be georeferenced. Defaults
            to False.
        check_files (bool): Read every header on load. Defaults to True.
        **kwargs: :class:`SegFolderDataset` arguments (``data_root``,
            ``img_dir``, ``ann_dir``, ``classes``, ``pipeline``, ...).

    Raises:
        GeoTIFFError: With ``check_files``: an image with too few bands or
            without required georeferencing, a mask of another size or with
            more than one band, or band names that do not match the band
            count; the message names the file.
    """

    def __init__(self,
                 img_suffix: str = '.tif',
                 seg_map_suffix: str = '.tif',
                 band_names: Optional[Sequence[str]] = None,
                 min_bands: Optional[int] = None,
                 require_georef: bool = False,
                 check_files: bool = True,
                 **kwargs) -> None:
        self.band_names = tuple(band_names) if band_names else None
        self.min_bands = min_bands
        self.require_georef = require_georef
        self.check_files = check_files
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """Pair tiles with masks, check them and attach band names."""
        data_list = super().load_data_list()
        names = self.band_names
        if names is None and data_list:
            names = read_info(data_list[0]['img_path']).band_names
        for info in data_list:
            info['band_names'] = names
            if self.check_files:
                self._check_pair(info, names)
        self._metainfo['band_names'] = names
        return data_list

    def _check_pair(self, info: dict, names: Optional[tuple]) -> None:
        image = read_info(info['img_path'])
        if self.require_georef:
            check_georef(image, 'GeoTIFFSegDataset(require_georef=True)')
        if self.min_bands is not None and image.bands < self.min_bands:
            raise GeoTIFFError(
                f'{image.path} has {image.bands} band(s); the dataset needs '
                f'at least {self.min_bands} (min_bands).')
        if names is not None and len(names) != image.bands:
            raise GeoTIFFError(
                f'{image.path} has {image.bands} band(s) but the dataset '
                f'names {len(names)}: {list(names)}.')
        if info['seg_map_path'] is None:
            return
        mask = read_info(info['seg_map_path'])
        if mask.bands != 1:
            raise GeoTIFFError(
                f'Mask {mask.path} has {mask.bands} bands; a mask must be a '
                'single band of class indices.')
        if (mask.height, mask.width) != (image.height, image.width):
            raise GeoTIFFError(
                f'Mask {mask.path} is {mask.height}x{mask.width} (HxW) but '
                f'image {image.path} is {image.height}x{image.width}; image '
                'and mask must have the same size.')
