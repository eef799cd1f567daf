"""Sliding-window segmentation of scenes larger than memory allows at once.

Windows of ``tile_size`` pixels step by ``tile_size - overlap`` (the last
row / column is moved back to end at the scene edge, as in the core
segmentor's slide mode). Logits of overlapping windows are blended, with
equal weights (``'average'``) or a Gaussian window that favours window
centres (``'gaussian'``), and divided by the summed weights.

Memory is bounded by one row of windows: blended logits are accumulated in a
float32 strip ``num_classes x tile_size x scene width``; rows that no later
window touches are finalised (argmax, confidence) and written straight to a
memory-mapped output GeoTIFF. The scene itself is memory-mapped when stored
uncompressed (see :class:`~dinov3_mm_satellite.geotiff.RasterReader`).
A progress bar over the batches of windows shows on a terminal or with
``DINOV3_MM_PROGRESS=1``.
"""
import logging
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import nn

from dinov3_mm.registry import TRANSFORMS
from dinov3_mm.utils import track
from .geotiff import (GeoTIFFError, RasterReader, check_georef,
                      create_mask_memmap)

BLEND_MODES = ('average', 'gaussian')
TileTransform = Callable[[dict], dict]


def window_starts(length: int, tile: int, stride: int) -> List[int]:
    """Start offsets of windows of ``tile`` covering ``[0, length)``.

    The last window ends at ``length``; a scene shorter than ``tile`` is
    one window of its own length.
    """
    if tile <= 0 or stride <= 0:
        raise ValueError(f'tile ({tile}) and stride ({stride}) must be '
                         'positive.')
    if length <= tile:
        return [0]
    count = -(-(length - tile) // stride) + 1
    return [min(i * stride, length - tile) for i in range(count)]


def blend_weights(height: int, width: int, mode: str) -> np.ndarray:
    """``(height, width)`` float32 weights of one window's logits."""
    if mode == 'average':
        return np.ones((height, width), np.float32)
    if mode == 'gaussian':
        def ramp(n: int) -> np.ndarray:
            x = (np.arange(n) + 0.5 - n / 2) / (n / 4)
            return np.exp(-0.5 * x**2)
        return np.outer(ramp(height), ramp(width)).astype(np.float32)
    raise ValueError(f'blend={mode!r}; expected one of {BLEND_MODES}.')


def pixel_transforms_from_config(cfg) -> List[TileTransform]:
    """The per-pixel transforms (``pixelwise = True``, e.g. band selection
    and normalisation) of the config's test pipeline, built.

    Loading, resizing and packing steps are left out: a scene is read
    window by window at its own resolution.
    """
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'pipeline', [])
    kept, skipped = [], []
    for step in pipeline:
        step = TRANSFORMS.build(step) if isinstance(step, dict) else step
        (kept if getattr(step, 'pixelwise', False) else skipped).append(step)
    print_log(
        f'Scene inference applies {[type(t).__name__ for t in kept]} per '
        f'window and skips {[type(t).__name__ for t in skipped]}.',
        logger='current', level=logging.DEBUG)
    return kept


@dataclass
class SceneResult:
    """What :func:`infer_scene` wrote.

    Attributes:
        mask_path (str): Class mask GeoTIFF.
        confidence_path (str, optional): Confidence GeoTIFF.
        shape (tuple[int, int]): ``(H, W)`` of the scene.
        num_windows (int): Windows run through the model.
        num_classes (int): Logit channels.
        memory_mapped (bool): Whether the scene was read through a memory
            map (else it was read whole).
    """
    mask_path: str
    confidence_path: Optional[str]
    shape: Tuple[int, int]
    num_windows: int
    num_classes: int
    memory_mapped: bool


class TiledSegmenter:
    """Run a segmentor over a scene window by window.

    Args:
        model (nn.Module): A segmentor whose ``forward(inputs,
            mode='tensor')`` returns logits at input size (e.g.
            ``DINOv3Segmentor``) and whose ``data_preprocessor`` pads (and,
            for multispectral configs, does not normalise).
        tile_size (int | tuple[int, int]): Window ``(h, w)``. Defaults to
            512.
        overlap (int | tuple[int, int]): Pixels shared by neighbouring
            windows. Defaults to 128.
        batch_size (int): Windows per forward pass. Defaults to 4.
        blend (str): ``'average'`` or ``'gaussian'``. Defaults to
            ``'gaussian'``.
        transforms (Sequence[callable], optional): Per-pixel transforms
            applied to each window's ``dict(img=float32 (h, w, B), ...)``,
            e.g. from :func:`pixel_transforms_from_config`.
        band_names (Sequence[str], optional): Names of the scene's bands;
            default the scene's GDAL band descriptions.
    """

    def __init__(self,
                 model: nn.Module,
                 tile_size=512,
                 overlap=128,
                 batch_size: int = 4,
                 blend: str = 'gaussian',
                 transforms: Optional[Sequence[TileTransform]] = None,
                 band_names: Optional[Sequence[str]] = None) -> None:
        self.model = model
        self.tile = _pair(tile_size, 'tile_size')
        ov = _pair(overlap, 'overlap', allow_zero=True)
        if ov[0] >= self.tile[0] or ov[1] >= self.tile[1]:
            raise ValueError(f'overlap {ov} must be smaller than tile_size '
                             f'{self.tile}.')
        self.stride = (self.tile[0] - ov[0], self.tile[1] - ov[1])
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
        self.batch_size = batch_size
        if blend not in BLEND_MODES:
            raise ValueError(f'blend={blend!r}; expected one of '
                             f'{BLEND_MODES}.')
        self.blend = blend
        self.transforms = list(transforms or [])
        self.band_names = tuple(band_names) if band_names else None
        self.num_windows = 0

    # ---------------------------------------------------------- one window
    def prepare(self, raw: np.ndarray, source: str,
                nodata: Optional[float] = None,
                band_names: Optional[Sequence[str]] = None) -> torch.Tensor:
        """Apply the per-pixel transforms; ``(B, h, w)`` float32 tensor.

        ``band_names`` defaults to the constructor's.
        """
        results = dict(img=raw.astype(np.float32), img_path=source,
                       band_names=band_names or self.band_names,
                       img_shape=raw.shape[:2], ori_shape=raw.shape[:2])
        if nodata is not None:
            results['nodata_mask'] = np.all(raw == nodata, -1)
        for step in self.transforms:
            results = step(results)
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        expected = getattr(getattr(self.model, 'backbone', None),
                           'in_channels', None)
        if expected is not None and img.shape[2] != expected:
            raise GeoTIFFError(
                f'Scene {source} gives {img.shape[2]} band(s) after the '
                f'band selection but the model expects in_channels='
                f'{expected}; select the bands the model was trained on.')
        return torch.from_numpy(
            np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))

    @torch.no_grad()
    def forward_windows(self, windows: List[torch.Tensor]) -> torch.Tensor:
        """Logits ``(n, C, h, w)`` of same-size windows."""
        h, w = windows[0].shape[-2:]
        data = self.model.data_preprocessor(dict(inputs=windows), False)
        logits = self.model(data['inputs'], mode='tensor')
        self.num_windows += len(windows)
        return logits[..., :h, :w].float().cpu()

    # --------------------------------------------------------- whole scene
    def iter_rows(self, reader: RasterReader) -> Iterator[
            Tuple[int, np.ndarray]]:
        """Blended logits of the scene, top to bottom.

        Yields:
            tuple[int, np.ndarray]: First row and the ``(C, rows, W)``
            float32 logits of a band of finished rows.
        """
        info = reader.info
        H, W = info.height, info.width
        th, tw = min(self.tile[0], H), min(self.tile[1], W)
        ys = window_starts(H, th, self.stride[0])
        xs = window_starts(W, tw, self.stride[1])
        weight = blend_weights(th, tw, self.blend)
        nodata = info.georef.nodata if info.georef is not None else None
        names = self.band_names or info.band_names
        acc: Optional[np.ndarray] = None
        wsum = np.zeros((th, W), np.float32)
        origin = 0
        batches = [(y, xs[start:start + self.batch_size]) for y in ys
                   for start in range(0, len(xs), self.batch_size)]
        name = osp.basename(info.path) if info.path else 'scene'
        for y, batch_xs in track(batches, desc=f'{name}: tiles',
                                 unit='batch'):
            shift = y - origin
            if shift and acc is not None:
                yield origin, acc[:, :shift] / wsum[:shift]
                acc[:, :th - shift] = acc[:, shift:].copy()
                acc[:, th - shift:] = 0
                wsum[:th - shift] = wsum[shift:].copy()
                wsum[th - shift:] = 0
            origin = y
            windows = [
                self.prepare(reader.read(y, y + th, x, x + tw),
                             info.path, nodata, names) for x in batch_xs
            ]
            logits = self.forward_windows(windows).numpy()
            if acc is None:
                acc = np.zeros((logits.shape[1], th, W), np.float32)
            for x, window_logits in zip(batch_xs, logits):
                acc[:, :, x:x + tw] += window_logits * weight
                wsum[:, x:x + tw] += weight
        assert acc is not None
        yield origin, acc[:, :H - origin] / wsum[:H - origin]


def labels_and_confidence(logits: np.ndarray, threshold: float = 0.5
                          ) -> Tuple[np.ndarray, np.ndarray]:
    """Class index and its probability from ``(C, h, w)`` logits (one
    channel: sigmoid with ``threshold``)."""
    tensor = torch.from_numpy(logits)
    if tensor.shape[0] == 1:
        prob = tensor[0].sigmoid()
        labels = (prob > threshold).long()
        confidence = torch.where(labels.bool(), prob, 1 - prob)
    else:
        confidence, labels = F.softmax(tensor, dim=0).max(dim=0)
    return labels.numpy(), confidence.numpy()


def infer_scene(model: nn.Module,
                scene: str,
                out: str,
                tile_size=512,
                overlap=128,
                batch_size: int = 4,
                blend: str = 'gaussian',
                confidence_out: Optional[str] = None,
                require_georef: bool = True,
                nodata_label: Optional[int] = None,
                transforms: Optional[Sequence[TileTransform]] = None,
                band_names: Optional[Sequence[str]] = None) -> SceneResult:
    """Segment a GeoTIFF scene window by window into a class-mask GeoTIFF.

    The mask (uint8, or uint16 above 256 classes) and the optional
    confidence raster (float32 probability of the chosen class) carry the
    scene's georeferencing tags unchanged (CRS and geotransform), without
    its GDAL_NODATA unless ``nodata_label`` is given.

    Args:
        model (nn.Module): Segmentor from ``dinov3_mm.apis.init_model``; its
            ``cfg`` test pipeline provides the per-pixel transforms when
            ``transforms`` is None.
        scene (str): Input GeoTIFF.
        out (str): Output class-mask GeoTIFF.
        tile_size, overlap, batch_size, blend: See :class:`TiledSegmenter`.
        confidence_out (str, optional): Output confidence GeoTIFF.
        require_georef (bool): Refuse scenes without georeferencing (the
            outputs would lose their place on Earth). Defaults to True.
        nodata_label (int, optional): Label written where every scene band
            equals the scene's no-data value (and recorded as the mask's
            GDAL_NODATA).
        transforms (Sequence[callable], optional): Per-pixel transforms;
            default :func:`pixel_transforms_from_config` of ``model.cfg``.
        band_names (Sequence[str], optional): Scene band names; default the
            config test dataset's ``band_names``, else the scene's own.

    Returns:
        SceneResult: Paths and counts.

    Raises:
        GeoTIFFError: No georeferencing while required, or a band count the
            model cannot take; messages name the scene.
    """
    cfg = getattr(model, 'cfg', None)
    if transforms is None:
        transforms = pixel_transforms_from_config(cfg) if cfg else []
    reader = RasterReader(scene)
    info = reader.info
    if require_georef:  # fail before any window is computed
        check_georef(info, 'writing a geo mask (require_georef=True)')
    if band_names is None and cfg is not None:
        band_names = cfg.get('test_dataloader', {}).get('dataset', {}).get(
            'band_names')
    band_names = band_names or info.band_names
    out_ref = None
    if info.georef is not None:
        out_ref = info.georef.with_nodata(nodata_label)
    shape = (info.height, info.width)
    segmenter = TiledSegmenter(model, tile_size, overlap, batch_size, blend,
                               transforms, band_names)
    threshold = float(getattr(model, 'threshold', 0.5))
    was_training = model.training
    model.eval()
    mask = conf = None
    num_classes = 0
    try:
        for y, logits in segmenter.iter_rows(reader):
            if mask is None:
                num_classes = logits.shape[0]
                dtype = np.uint8 if max(num_classes, 2) <= 256 else np.uint16
                mask = create_mask_memmap(out, shape, dtype,
                                          out_ref, require_georef, scene)
                if confidence_out:
                    conf = create_mask_memmap(confidence_out, shape,
                                              np.float32, out_ref,
                                              require_georef, scene)
            labels, confidence = labels_and_confidence(logits, threshold)
            rows = slice(y, y + labels.shape[0])
            if nodata_label is not None and out_ref is not None and \
                    info.georef.nodata is not None:
                raw = reader.read(rows.start, rows.stop, 0, info.width)
                labels = np.where(np.all(raw == info.georef.nodata, -1),
                                  nodata_label, labels)
            mask[rows] = labels
            if conf is not None:
                conf[rows] = confidence
    finally:
        for array in (mask, conf):
            if array is not None:
                array.flush()
        memory_mapped = reader.memory_mapped
        reader.close()
        model.train(was_training)
    return SceneResult(out, confidence_out, shape, segmenter.num_windows,
                       num_classes, memory_mapped)


def _pair(value, name: str, allow_zero: bool = False) -> Tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    low = 0 if allow_zero else 1
    if len(value) != 2 or min(value) < low:
        raise ValueError(f'{name}={value} must be an int or (h, w) >= {low}.')
    return value  # type: ignore[return-value]
