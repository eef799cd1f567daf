"""Georeferencing of a GeoTIFF: affine geotransform, CRS and the raw tags.

A :class:`GeoReference` is built from the GeoTIFF tags of a file (see
:data:`GEO_TAGS`) and turns back into the same tags, so a mask written with
the georeference of its scene carries identical CRS and geotransform tags.

The geotransform uses GDAL's order ``(x0, dx, rx, y0, ry, dy)``: the world
coordinates of pixel corner ``(col, row)`` are ``x = x0 + col*dx + row*rx``
and ``y = y0 + col*ry + row*dy`` (``dy`` is negative for north-up images),
exactly as the tags state it (no half-pixel shift for PixelIsPoint rasters;
the raster type stays in the GeoKeys and is written back unchanged).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

#: Tag codes read and written with the georeference.
MODEL_PIXEL_SCALE = 33550
MODEL_TIEPOINT = 33922
MODEL_TRANSFORMATION = 34264
GEO_KEY_DIRECTORY = 34735
GEO_DOUBLE_PARAMS = 34736
GEO_ASCII_PARAMS = 34737
GDAL_NODATA = 42113
GEO_TAGS = (MODEL_PIXEL_SCALE, MODEL_TIEPOINT, MODEL_TRANSFORMATION,
            GEO_KEY_DIRECTORY, GEO_DOUBLE_PARAMS, GEO_ASCII_PARAMS)

#: GeoKey ids used here (GeoTIFF 1.1).
GT_MODEL_TYPE = 1024  # 1 projected, 2 geographic, 3 geocentric
GT_RASTER_TYPE = 1025  # 1 PixelIsArea, 2 PixelIsPoint
GT_CITATION = 1026
GEOGRAPHIC_TYPE = 2048
PROJECTED_CS_TYPE = 3072
PROJ_LINEAR_UNITS = 3076
USER_DEFINED = 32767

#: TIFF tag type of each georeferencing tag, as tifffile's ``extratags``
#: dtype codes: ``d`` float64, ``H`` uint16, ``s`` ASCII.
_TAG_DTYPES = {
    MODEL_PIXEL_SCALE: 'd',
    MODEL_TIEPOINT: 'd',
    MODEL_TRANSFORMATION: 'd',
    GEO_KEY_DIRECTORY: 'H',
    GEO_DOUBLE_PARAMS: 'd',
    GEO_ASCII_PARAMS: 's',
    GDAL_NODATA: 's',
}

GeoTransform = Tuple[float, float, float, float, float, float]


class GeoReferenceError(ValueError):
    """Georeferencing tags are missing, inconsistent or unsupported."""


def parse_geokeys(directory: Sequence[int],
                  doubles: Sequence[float] = (),
                  ascii_params: str = '') -> Dict[int, object]:
    """Decode a GeoKeyDirectoryTag into ``{key id: value}``.

    Args:
        directory (Sequence[int]): The GeoKeyDirectoryTag shorts: a header
            ``(version, revision, minor, number of keys)`` then four shorts
            per key ``(id, tag location, count, value or offset)``.
        doubles (Sequence[float]): GeoDoubleParamsTag values.
        ascii_params (str): GeoAsciiParamsTag text (``|``-terminated items).

    Returns:
        dict: Key id to an int (short keys), a float or tuple of floats
        (double keys) or a str (ASCII keys, without the ``|``).

    Raises:
        GeoReferenceError: The directory is truncated or points outside the
            parameter tags.
    """
    directory = [int(v) for v in directory]
    if len(directory) < 4:
        raise GeoReferenceError(
            f'GeoKeyDirectoryTag has {len(directory)} values; it needs a '
            '4-value header.')
    count = directory[3]
    if len(directory) < 4 + 4 * count:
        raise GeoReferenceError(
            f'GeoKeyDirectoryTag announces {count} keys but holds '
            f'{(len(directory) - 4) // 4}.')
    keys: Dict[int, object] = {}
    for i in range(count):
        key, location, n, value = directory[4 + 4 * i:8 + 4 * i]
        if location == 0:
            keys[key] = value
        elif location == GEO_DOUBLE_PARAMS:
            if value + n > len(doubles):
                raise GeoReferenceError(
                    f'GeoKey {key} points past GeoDoubleParamsTag '
                    f'({len(doubles)} values).')
            part = tuple(float(d) for d in doubles[value:value + n])
            keys[key] = part[0] if n == 1 else part
        elif location == GEO_ASCII_PARAMS:
            keys[key] = ascii_params[value:value + n].rstrip('|\x00')
        else:
            keys[key] = (location, n, value)  # in another tag: kept raw
    return keys


def _format_nodata(value: float) -> str:
    """GDAL's text form of a no-data value (``'0'``, ``'-9999'``, ``'nan'``)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _as_str(value) -> str:
    if isinstance(value, bytes):
        return value.decode('ascii', 'replace')
    return str(value)


def _geotransform_from_tags(tags: Mapping[int, object],
                            source: str) -> Optional[GeoTransform]:
    """The affine geotransform the model tags describe, or None."""
    matrix = tags.get(MODEL_TRANSFORMATION)
    if matrix is not None:
        m = [float(v) for v in matrix]
        if len(m) != 16:
            raise GeoReferenceError(
                f'{source}: ModelTransformationTag has {len(m)} values, '
                'expected 16.')
        return (m[3], m[0], m[1], m[7], m[4], m[5])
    scale, tiepoints = tags.get(MODEL_PIXEL_SCALE), tags.get(MODEL_TIEPOINT)
    if scale is None or tiepoints is None:
        return None
    scale = [float(v) for v in scale]
    tie = [float(v) for v in tiepoints]
    if len(scale) < 2 or len(tie) < 6:
        raise GeoReferenceError(
            f'{source}: ModelPixelScaleTag ({len(scale)} values) or '
            f'ModelTiepointTag ({len(tie)} values) is too short.')
    i, j, _, x, y, _ = tie[:6]
    sx, sy = scale[:2]
    return (x - i * sx, sx, 0.0, y + j * sy, 0.0, -sy)


@dataclass
class GeoReference:
    """Where a raster lies on Earth.

    Attributes:
        geotransform (tuple, optional): GDAL-order affine ``(x0, dx, rx, y0,
            ry, dy)``; None when the file has only ground control points.
        epsg (int, optional): EPSG code of the projected (else geographic)
            CRS; None when user-defined or absent.
        geokeys (dict): Every decoded GeoKey (see :func:`parse_geokeys`).
        tags (dict): The raw georeferencing tags, ``{code: value}``, written
            back unchanged by :meth:`to_extratags`.
        nodata (float, optional): GDAL_NODATA value.
        source (str): The file it was read from (for messages).
    """
    geotransform: Optional[GeoTransform]
    epsg: Optional[int] = None
    geokeys: Dict[int, object] = field(default_factory=dict)
    tags: Dict[int, object] = field(default_factory=dict)
    nodata: Optional[float] = None
    source: str = '<memory>'

    # ----------------------------------------------------------- building
    @classmethod
    def from_tags(cls, tags: Mapping[int, object],
                  source: str = '<memory>') -> Optional['GeoReference']:
        """Build from ``{tag code: value}``; None without any georeferencing
        tag of :data:`GEO_TAGS` (GDAL_NODATA alone is then ignored).

        Args:
            tags (Mapping[int, object]): Tag values, e.g. from tifffile's
                ``{tag.code: tag.value for tag in page.tags}``.
            source (str): File name used in error messages.

        Raises:
            GeoReferenceError: Malformed georeferencing tags.
        """
        geo = {code: tags[code] for code in GEO_TAGS if code in tags}
        if not geo:
            return None
        keys: Dict[int, object] = {}
        if GEO_KEY_DIRECTORY in geo:
            try:
                keys = parse_geokeys(
                    geo[GEO_KEY_DIRECTORY],
                    geo.get(GEO_DOUBLE_PARAMS, ()),
                    _as_str(geo.get(GEO_ASCII_PARAMS, '')))
            except GeoReferenceError as exc:
                raise GeoReferenceError(f'{source}: {exc}') from exc
        epsg = None
        for key in (PROJECTED_CS_TYPE, GEOGRAPHIC_TYPE):
            code = keys.get(key)
            if isinstance(code, int) and 0 < code != USER_DEFINED:
                epsg = code
                break
        nodata = None
        if GDAL_NODATA in tags:
            text = _as_str(tags[GDAL_NODATA]).strip('\x00 ')
            try:
                nodata = float(text)
            except ValueError:
                raise GeoReferenceError(
                    f'{source}: GDAL_NODATA {text!r} is not a number.'
                ) from None
            geo[GDAL_NODATA] = text
        return cls(
            geotransform=_geotransform_from_tags(geo, source),
            epsg=epsg,
            geokeys=keys,
            tags=geo,
            nodata=nodata,
            source=source)

    @classmethod
    def from_geotransform(cls,
                          geotransform: Sequence[float],
                          epsg: int,
                          citation: Optional[str] = None,
                          nodata: Optional[float] = None,
                          pixel_is_point: bool = False) -> 'GeoReference':
        """A north-up (or rotated) georeference in a projected EPSG CRS.

        Args:
            geotransform (Sequence[float]): GDAL-order ``(x0, dx, rx, y0, ry,
                dy)``. Without rotation (``rx == ry == 0``) the tags are
                ModelPixelScale + ModelTiepoint, else ModelTransformation.
            epsg (int): Projected CRS code, e.g. 32633 (WGS 84 / UTM 33N).
            citation (str, optional): GTCitationGeoKey text.
            nodata (float, optional): GDAL_NODATA value.
            pixel_is_point (bool): Raster type PixelIsPoint instead of
                PixelIsArea. Defaults to False.
        """
        gt = tuple(float(v) for v in geotransform)
        if len(gt) != 6:
            raise GeoReferenceError(
                f'geotransform needs 6 values, got {len(gt)}.')
        x0, dx, rx, y0, ry, dy = gt
        tags: Dict[int, object] = {}
        if rx == 0 and ry == 0:
            tags[MODEL_PIXEL_SCALE] = (dx, -dy, 0.0)
            tags[MODEL_TIEPOINT] = (0.0, 0.0, 0.0, x0, y0, 0.0)
        else:
            tags[MODEL_TRANSFORMATION] = (dx, rx, 0.0, x0, ry, dy, 0.0, y0,
                                          0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                                          1.0)
        entries: List[Tuple[int, int, int, int]] = [
            (GT_MODEL_TYPE, 0, 1, 1),
            (GT_RASTER_TYPE, 0, 1, 2 if pixel_is_point else 1),
            (PROJECTED_CS_TYPE, 0, 1, int(epsg)),
            (PROJ_LINEAR_UNITS, 0, 1, 9001),  # metre
        ]
        ascii_params = ''
        if citation:
            ascii_params = citation.replace('|', '/') + '|'
            entries.append((GT_CITATION, GEO_ASCII_PARAMS,
                            len(ascii_params), 0))
            tags[GEO_ASCII_PARAMS] = ascii_params
        entries.sort()
        directory = [1, 1, 0, len(entries)]
        for entry in entries:
            directory.extend(entry)
        tags[GEO_KEY_DIRECTORY] = tuple(directory)
        if nodata is not None:
            tags[GDAL_NODATA] = _format_nodata(nodata)
        ref = cls.from_tags(tags, source='<generated>')
        assert ref is not None
        return ref

    # --------------------------------------------------------------- using
    @property
    def crs(self) -> str:
        """``'EPSG:<code>'``, or ``'user-defined'`` without a code."""
        return f'EPSG:{self.epsg}' if self.epsg else 'user-defined'

    def pixel_to_world(self, row: float, col: float) -> Tuple[float, float]:
        """World ``(x, y)`` of the pixel-corner coordinates ``(row, col)``."""
        gt = self._require_transform()
        return (gt[0] + col * gt[1] + row * gt[2],
                gt[3] + col * gt[4] + row * gt[5])

    def window(self, row_off: int, col_off: int) -> 'GeoReference':
        """The georeference of a window whose top-left pixel is
        ``(row_off, col_off)`` of this raster.

        Only the tiepoint (or the translation of ModelTransformation)
        changes; every other tag is kept, so CRS and pixel size are equal.
        """
        gt = self._require_transform()
        x, y = self.pixel_to_world(row_off, col_off)
        tags = dict(self.tags)
        if MODEL_TRANSFORMATION in tags:
            m = [float(v) for v in tags[MODEL_TRANSFORMATION]]
            m[3], m[7] = x, y
            tags[MODEL_TRANSFORMATION] = tuple(m)
        else:
            tie = [float(v) for v in tags[MODEL_TIEPOINT]][:6]
            # keep the tiepoint's raster coordinates, move its world point
            tie[3] = x + tie[0] * gt[1] + tie[1] * gt[2]
            tie[4] = y + tie[0] * gt[4] + tie[1] * gt[5]
            tags[MODEL_TIEPOINT] = tuple(tie)
        ref = GeoReference.from_tags(tags, source=self.source)
        assert ref is not None
        return ref

    def with_nodata(self, nodata: Optional[float]) -> 'GeoReference':
        """A copy with GDAL_NODATA set to ``nodata`` (None: removed), e.g.
        for a class mask, whose values mean something else than the
        scene's no-data value."""
        tags = {k: v for k, v in self.tags.items() if k != GDAL_NODATA}
        if nodata is not None:
            tags[GDAL_NODATA] = _format_nodata(nodata)
        ref = GeoReference.from_tags(tags, source=self.source)
        assert ref is not None
        return ref

    def to_extratags(self) -> List[Tuple[int, str, int, object, bool]]:
        """The tags as tifffile ``extratags`` entries, in code order."""
        out = []
        for code in sorted(self.tags):
            value = self.tags[code]
            dtype = _TAG_DTYPES[code]
            if dtype == 's':
                out.append((code, 's', 0, _as_str(value), True))
            else:
                values = tuple(value)
                out.append((code, dtype, len(values), values, True))
        return out

    def same_grid(self, other: 'GeoReference', tol: float = 1e-9) -> bool:
        """Whether ``other`` has the same CRS and geotransform."""
        if self.epsg != other.epsg:
            return False
        if self.geotransform is None or other.geotransform is None:
            return self.geotransform == other.geotransform
        return all(
            abs(a - b) <= tol * max(1.0, abs(a), abs(b))
            for a, b in zip(self.geotransform, other.geotransform))

    def _require_transform(self) -> GeoTransform:
        if self.geotransform is None:
            raise GeoReferenceError(
                f'{self.source} has no affine geotransform (neither '
                'ModelTransformationTag nor ModelPixelScaleTag + '
                'ModelTiepointTag); ground-control-point georeferencing is '
                'not supported. Warp the file to a regular grid first.')
        return self.geotransform
