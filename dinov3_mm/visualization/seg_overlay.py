"""Segmentation pictures: coloured masks, overlays and comparison panels.

Everything is drawn with numpy and OpenCV (no matplotlib). Images are RGB
uint8 ``(H, W, 3)`` arrays, masks integer ``(H, W)`` class-index arrays in
which ``ignore_index`` (255) marks unlabelled pixels.
"""
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Colour of ignored (and out-of-palette) pixels in :func:`colorize_mask`.
IGNORE_COLOR = (0, 0, 0)
#: Error map colours of :func:`error_map`.
ERROR_COLOR = (255, 0, 0)
IGNORED_ERROR_COLOR = (128, 128, 128)
CORRECT_COLOR = (0, 0, 0)
#: Panel layout of :func:`compare_panel` (pixels).
TILE_GAP = 4
HEADER_HEIGHT = 18
LEGEND_ROW_HEIGHT = 18
LEGEND_SWATCH = 12
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.4
_BACKGROUND = 255
_TEXT_COLOR = (0, 0, 0)


def default_palette(num_classes: int) -> List[List[int]]:
    """The fixed palette used when a dataset has none.

    The same colours :class:`~dinov3_mm.datasets.SegFolderDataset` generates
    for a dataset without a palette (class 0 black, then reproducible
    distinct colours), so pictures of such a dataset match its metainfo.

    Args:
        num_classes (int): Number of colours.

    Returns:
        list[list[int]]: ``num_classes`` RGB triples.
    """
    from dinov3_mm.datasets.seg_folder import default_palette as _palette
    return _palette(int(num_classes))


def _palette_array(palette: Optional[Sequence[Sequence[int]]],
                   *masks: Optional[np.ndarray],
                   ignore_index: int = 255) -> np.ndarray:
    """``(N, 3)`` uint8 palette; a default one sized to the masks if None."""
    if palette is None:
        top = 0
        for mask in masks:
            if mask is None:
                continue
            valid = np.asarray(mask)[np.asarray(mask) != ignore_index]
            if valid.size:
                top = max(top, int(valid.max()) + 1)
        palette = default_palette(max(top, 1))
    array = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError('Palette colours must lie in [0, 255].')
    return array.astype(np.uint8)


def _check_mask(mask: np.ndarray, name: str = 'mask') -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    elif mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f'{name} must be an (H, W) index array, got shape '
                         f'{mask.shape}.')
    return mask.astype(np.int64)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be RGB (H, W, 3), got shape '
                         f'{image.shape}.')
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def colorize_mask(mask: np.ndarray,
                  palette: Optional[Sequence[Sequence[int]]] = None,
                  ignore_index: int = 255) -> np.ndarray:
    """Colour a class-index mask.

    Args:
        mask (np.ndarray): ``(H, W)`` class indices.
        palette (sequence, optional): RGB colour per class; defaults to
            :func:`default_palette` sized to the mask.
        ignore_index (int): Label drawn in :data:`IGNORE_COLOR` (black), as
            is any label without a palette entry. Defaults to 255.

    Returns:
        np.ndarray: RGB uint8 ``(H, W, 3)``.
    """
    mask = _check_mask(mask)
    colours = _palette_array(palette, mask, ignore_index=ignore_index)
    out = np.empty(mask.shape + (3, ), np.uint8)
    out[...] = IGNORE_COLOR
    known = (mask >= 0) & (mask < len(colours)) & (mask != ignore_index)
    out[known] = colours[mask[known]]
    return out


def overlay_mask(image: np.ndarray,
                 mask: np.ndarray,
                 palette: Optional[Sequence[Sequence[int]]] = None,
                 alpha: float = 0.5,
                 ignore_index: int = 255) -> np.ndarray:
    """Blend the mask's class colours over an image.

    Labelled pixels become ``round((1 - alpha) * image + alpha * colour)``;
    ignored pixels (and labels without a palette entry) keep the image.

    Args:
        image (np.ndarray): RGB uint8 ``(H, W, 3)``.
        mask (np.ndarray): ``(H, W)`` class indices of the same size.
        palette (sequence, optional): RGB colour per class.
        alpha (float): Mask opacity in ``[0, 1]``. Defaults to 0.5.
        ignore_index (int): Defaults to 255.

    Returns:
        np.ndarray: RGB uint8 ``(H, W, 3)``.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f'alpha={alpha} must lie in [0, 1].')
    image = _check_image(image)
    mask = _check_mask(mask)
    if image.shape[:2] != mask.shape:
        raise ValueError(f'image is {image.shape[0]}x{image.shape[1]} but '
                         f'mask is {mask.shape[0]}x{mask.shape[1]} (HxW).')
    colours = _palette_array(palette, mask, ignore_index=ignore_index)
    known = (mask >= 0) & (mask < len(colours)) & (mask != ignore_index)
    out = image.copy()
    blended = ((1 - alpha) * image[known].astype(np.float64) +
               alpha * colours[mask[known]].astype(np.float64))
    out[known] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def error_map(gt: np.ndarray, pred: np.ndarray,
              ignore_index: int = 255) -> np.ndarray:
    """Where a prediction is wrong: :data:`ERROR_COLOR` (red), ignored
    ground truth :data:`IGNORED_ERROR_COLOR` (grey), correct black.

    Returns:
        np.ndarray: RGB uint8 ``(H, W, 3)``.
    """
    gt, pred = _check_mask(gt, 'gt'), _check_mask(pred, 'pred')
    if gt.shape != pred.shape:
        raise ValueError(f'gt is {gt.shape} but pred is {pred.shape}.')
    out = np.empty(gt.shape + (3, ), np.uint8)
    out[...] = CORRECT_COLOR
    ignored = gt == ignore_index
    out[(gt != pred) & ~ignored] = ERROR_COLOR
    out[ignored] = IGNORED_ERROR_COLOR
    return out


def tile_scale(height: int, width: int, min_tile_size: int = 128,
               max_tile_size: int = 512) -> Tuple[int, int]:
    """Displayed ``(h, w)`` of an image in :func:`compare_panel`.

    Images whose longer side is below ``min_tile_size`` are enlarged by the
    smallest integer factor reaching it; above ``max_tile_size`` they are
    shrunk to it (aspect ratio kept).
    """
    longest = max(height, width)
    if longest < min_tile_size:
        factor = math.ceil(min_tile_size / longest)
        return height * factor, width * factor
    if longest > max_tile_size:
        scale = max_tile_size / longest
        return (max(1, int(round(height * scale))),
                max(1, int(round(width * scale))))
    return height, width


def _resize(array: np.ndarray, hw: Tuple[int, int], nearest: bool
            ) -> np.ndarray:
    if array.shape[:2] == tuple(hw):
        return array
    if nearest:
        flag = cv2.INTER_NEAREST
    else:
        flag = (cv2.INTER_AREA if hw[0] < array.shape[0] else
                cv2.INTER_NEAREST)
    return cv2.resize(array, (hw[1], hw[0]), interpolation=flag)


def _text(canvas: np.ndarray, text: str, x: int, y_top: int,
          height: int) -> None:
    (_, text_h), _ = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
    y = y_top + (height + text_h) // 2
    cv2.putText(canvas, text, (x, y), _FONT, _FONT_SCALE, _TEXT_COLOR, 1,
                cv2.LINE_AA)


def _legend_layout(names: Sequence[str], width: int
                   ) -> List[List[Tuple[int, int]]]:
    """Rows of ``(class index, x)`` entries fitting ``width`` pixels."""
    rows, row, x = [], [], 0
    for idx, name in enumerate(names):
        if name is None:
            continue
        (text_w, _), _ = cv2.getTextSize(name, _FONT, _FONT_SCALE, 1)
        entry = LEGEND_SWATCH + 4 + text_w + 12
        if row and x + entry > width:
            rows.append(row)
            row, x = [], 0
        row.append((idx, x + 4))
        x += entry
    if row:
        rows.append(row)
    return rows


def compare_panel(image: np.ndarray,
                  gt: Optional[np.ndarray],
                  pred: np.ndarray,
                  palette: Optional[Sequence[Sequence[int]]] = None,
                  classes: Optional[Sequence[str]] = None,
                  alpha: float = 0.5,
                  ignore_index: int = 255,
                  min_tile_size: int = 128,
                  max_tile_size: int = 512,
                  max_legend_classes: int = 24) -> np.ndarray:
    """One picture comparing a prediction with the ground truth.

    Layout (white background)::

        | image | ground truth | prediction | errors |   <- titles
        |  ...  |   overlay    |  overlay   |  map   |   <- tiles
        [swatch] class name  [swatch] class name ...     <- legend rows

    The error map is red where the prediction is wrong, grey where the
    ground truth is ``ignore_index`` and black elsewhere. Without ``gt`` the
    panel has the image and the prediction only. Tiles are separated by
    :data:`TILE_GAP` pixels, so the width is ``n * w + (n - 1) * TILE_GAP``
    for ``n`` tiles of displayed width ``w`` (see :func:`tile_scale`).

    Args:
        image (np.ndarray): RGB uint8 ``(H, W, 3)``.
        gt (np.ndarray, optional): ``(H, W)`` ground-truth indices.
        pred (np.ndarray): ``(H, W)`` predicted indices.
        palette (sequence, optional): RGB colour per class; defaults to
            :func:`default_palette`.
        classes (sequence[str], optional): Class names of the legend;
            defaults to the indices.
        alpha (float): Overlay opacity. Defaults to 0.5.
        ignore_index (int): Defaults to 255.
        min_tile_size (int): Smaller images are enlarged by an integer
            factor (nearest). Defaults to 128.
        max_tile_size (int): Larger images are shrunk. Defaults to 512.
        max_legend_classes (int): With more classes than this the legend
            lists only the classes present in ``gt`` or ``pred``.
            Defaults to 24.

    Returns:
        np.ndarray: RGB uint8 panel.
    """
    image = _check_image(image)
    pred = _check_mask(pred, 'pred')
    gt = _check_mask(gt, 'gt') if gt is not None else None
    for name, mask in (('gt', gt), ('pred', pred)):
        if mask is not None and mask.shape != image.shape[:2]:
            raise ValueError(
                f'{name} is {mask.shape[0]}x{mask.shape[1]} but the image is '
                f'{image.shape[0]}x{image.shape[1]} (HxW).')
    if palette is None:
        num = len(classes) if classes is not None else None
        colours = _palette_array(
            default_palette(num) if num else None, gt, pred,
            ignore_index=ignore_index)
    else:
        colours = _palette_array(palette)
    num_classes = len(classes) if classes is not None else len(colours)
    names = ([str(c) for c in classes] if classes is not None else
             [str(i) for i in range(num_classes)])
    names = names[:len(colours)]

    th, tw = tile_scale(*image.shape[:2], min_tile_size=min_tile_size,
                        max_tile_size=max_tile_size)
    shown = _resize(image, (th, tw), nearest=False)
    pred_s = _resize(pred.astype(np.int32), (th, tw), nearest=True)
    tiles = [('image', shown)]
    if gt is not None:
        gt_s = _resize(gt.astype(np.int32), (th, tw), nearest=True)
        tiles.append(('ground truth', overlay_mask(
            shown, gt_s, colours, alpha, ignore_index)))
    tiles.append(('prediction', overlay_mask(shown, pred_s, colours, alpha,
                                             ignore_index)))
    if gt is not None:
        tiles.append(('errors', error_map(gt_s, pred_s, ignore_index)))

    width = len(tiles) * tw + (len(tiles) - 1) * TILE_GAP
    if len(names) > max_legend_classes:
        present = set(np.unique(pred).tolist())
        if gt is not None:
            present |= set(np.unique(gt).tolist())
        names = [n if i in present else None for i, n in enumerate(names)]
    legend = _legend_layout(names, width)
    height = HEADER_HEIGHT + th + len(legend) * LEGEND_ROW_HEIGHT
    canvas = np.full((height, width, 3), _BACKGROUND, np.uint8)
    for i, (title, tile) in enumerate(tiles):
        x = i * (tw + TILE_GAP)
        canvas[HEADER_HEIGHT:HEADER_HEIGHT + th, x:x + tw] = tile
        _text(canvas, title, x + 2, 0, HEADER_HEIGHT)
    for r, row in enumerate(legend):
        y = HEADER_HEIGHT + th + r * LEGEND_ROW_HEIGHT
        top = y + (LEGEND_ROW_HEIGHT - LEGEND_SWATCH) // 2
        for idx, x in row:
            colour = tuple(int(c) for c in colours[idx])
            cv2.rectangle(canvas, (x, top),
                          (x + LEGEND_SWATCH - 1, top + LEGEND_SWATCH - 1),
                          colour, -1)
            cv2.rectangle(canvas, (x, top),
                          (x + LEGEND_SWATCH - 1, top + LEGEND_SWATCH - 1),
                          (96, 96, 96), 1)
            _text(canvas, names[idx], x + LEGEND_SWATCH + 4, y,
                  LEGEND_ROW_HEIGHT)
    return canvas
