"""Pictures of single samples: captioned images, labelled masks, boxes.

Used to show what a pipeline feeds the model (``tools/misc/browse_dataset.py``)
and what a model predicted (``tools/test.py --show-dir``). Images are RGB
uint8 ``(H, W, 3)`` arrays; everything is drawn with OpenCV.
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .seg_overlay import (IGNORE_COLOR, default_palette, overlay_mask,
                          tile_scale)

#: Text colours of :func:`caption_image` lines.
TEXT_COLOR = (0, 0, 0)
CORRECT_COLOR = (0, 128, 0)
WRONG_COLOR = (200, 0, 0)
#: Layout (pixels).
LINE_HEIGHT = 16
MARGIN = 4
GAP = 4
SWATCH = 12
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.4
_WHITE = 255

Line = Tuple[str, Tuple[int, int, int]]


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` copy of a gray, RGB or RGBA image.

    Float images with values in ``[0, 1]`` are scaled to ``[0, 255]``; other
    values are clipped.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f'Expected an (H, W[, C]) image, got shape '
                         f'{image.shape}.')
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] > 3:
        image = image[..., :3]
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        if image.size and image.min() >= 0 and image.max() <= 1:
            image = image * 255
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def _scaled(image: np.ndarray, min_size: int, max_size: int) -> np.ndarray:
    h, w = tile_scale(*image.shape[:2], min_tile_size=min_size,
                      max_tile_size=max_size)
    if (h, w) == image.shape[:2]:
        return image
    flag = cv2.INTER_AREA if h < image.shape[0] else cv2.INTER_NEAREST
    return cv2.resize(image, (w, h), interpolation=flag)


def _fit_text(text: str, width: int) -> str:
    """``text`` shortened with '...' to fit ``width`` pixels."""
    def text_width(value):
        return cv2.getTextSize(value, _FONT, _FONT_SCALE, 1)[0][0]

    if text_width(text) <= width:
        return text
    while text and text_width(text + '...') > width:
        text = text[:-1]
    return text + '...'


def _put_text(canvas: np.ndarray, text: str, x: int, y_top: int,
              color: Tuple[int, int, int]) -> None:
    (_, text_h), _ = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
    y = y_top + (LINE_HEIGHT + text_h) // 2
    cv2.putText(canvas, text, (x, y), _FONT, _FONT_SCALE, color, 1,
                cv2.LINE_AA)


def caption_image(image: np.ndarray,
                  lines: Sequence,
                  min_size: int = 128,
                  max_size: int = 512) -> np.ndarray:
    """The image under a white header with one text line per entry.

    Args:
        image (np.ndarray): RGB image (see :func:`to_rgb_uint8`).
        lines (sequence): Strings or ``(text, rgb_colour)`` pairs.
        min_size (int): Smaller images are enlarged by an integer factor.
            Defaults to 128.
        max_size (int): Larger images are shrunk. Defaults to 512.

    Returns:
        np.ndarray: RGB uint8 picture, ``len(lines) * LINE_HEIGHT + MARGIN``
        pixels taller than the (scaled) image and widened (white on the
        right) to fit the longest line, up to ``max_size``.
    """
    shown = _scaled(to_rgb_uint8(image), min_size, max_size)
    entries: List[Line] = [
        (line, TEXT_COLOR) if isinstance(line, str) else
        (str(line[0]), tuple(int(c) for c in line[1])) for line in lines
    ]
    header = len(entries) * LINE_HEIGHT + (MARGIN if entries else 0)
    h, w = shown.shape[:2]
    text_w = max([cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)[0][0]
                  for text, _ in entries] + [0])
    width = max(w, min(text_w + 2 * MARGIN, max(max_size, w)))
    canvas = np.full((header + h, width, 3), _WHITE, np.uint8)
    for i, (text, color) in enumerate(entries):
        _put_text(canvas, _fit_text(text, width - 2 * MARGIN), MARGIN,
                  i * LINE_HEIGHT, color)
    canvas[header:, :w] = shown
    return canvas


def class_name(index: int, classes: Optional[Sequence[str]]) -> str:
    """``classes[index]``, or the index when there is no such name."""
    if classes is not None and 0 <= int(index) < len(classes):
        return str(classes[int(index)])
    return str(int(index))


def cls_prediction_lines(pred_labels: Sequence[int],
                         pred_scores: Sequence[float],
                         gt_labels: Optional[Sequence[int]] = None,
                         classes: Optional[Sequence[str]] = None
                         ) -> List[Line]:
    """Caption lines of a classification prediction.

    The prediction line is green when it equals the ground truth (as a set
    of labels), red when it does not, black without ground truth.

    Args:
        pred_labels (sequence[int]): Predicted class indices (one for
            single-label data).
        pred_scores (sequence[float]): Their scores, same order.
        gt_labels (sequence[int], optional): True class indices.
        classes (sequence[str], optional): Class names.

    Returns:
        list: ``(text, colour)`` lines for :func:`caption_image`.
    """
    preds = ', '.join(f'{class_name(label, classes)} ({score:.2f})'
                      for label, score in zip(pred_labels, pred_scores))
    color = TEXT_COLOR
    lines: List[Line] = []
    if gt_labels is not None:
        right = sorted(int(i) for i in pred_labels) == sorted(
            int(i) for i in gt_labels)
        color = CORRECT_COLOR if right else WRONG_COLOR
    lines.append((f'pred: {preds or "-"}', color))
    if gt_labels is not None:
        names = ', '.join(class_name(i, classes) for i in gt_labels)
        lines.append((f'true: {names or "-"}', TEXT_COLOR))
    return lines


def _legend(names: Sequence[Tuple[int, str]], colours: np.ndarray,
            width: int) -> np.ndarray:
    """White rows of colour swatches and names, wrapped to ``width``."""
    rows, row, x = [], [], MARGIN
    for idx, name in names:
        text_w = cv2.getTextSize(name, _FONT, _FONT_SCALE, 1)[0][0]
        entry = SWATCH + 4 + text_w + 10
        if row and x + entry > width:
            rows.append(row)
            row, x = [], MARGIN
        row.append((idx, name, x))
        x += entry
    if row:
        rows.append(row)
    legend = np.full((len(rows) * LINE_HEIGHT, width, 3), _WHITE, np.uint8)
    for r, entries in enumerate(rows):
        top = r * LINE_HEIGHT + (LINE_HEIGHT - SWATCH) // 2
        for idx, name, x in entries:
            colour = (tuple(int(c) for c in colours[idx])
                      if 0 <= idx < len(colours) else IGNORE_COLOR)
            cv2.rectangle(legend, (x, top), (x + SWATCH - 1, top + SWATCH - 1),
                          colour, -1)
            cv2.rectangle(legend, (x, top), (x + SWATCH - 1, top + SWATCH - 1),
                          (96, 96, 96), 1)
            _put_text(legend, name, x + SWATCH + 4, r * LINE_HEIGHT,
                      TEXT_COLOR)
    return legend


def mask_panel(image: np.ndarray,
               mask: np.ndarray,
               classes: Optional[Sequence[str]] = None,
               palette: Optional[Sequence[Sequence[int]]] = None,
               title: str = 'mask',
               alpha: float = 0.5,
               ignore_index: int = 255,
               min_size: int = 128,
               max_size: int = 512) -> np.ndarray:
    """Image and mask overlay side by side, with a legend of the classes
    present in the mask.

    Args:
        image (np.ndarray): RGB image ``(H, W, 3)``.
        mask (np.ndarray): ``(H, W)`` class indices of the same size.
        classes (sequence[str], optional): Class names; defaults to indices.
        palette (sequence, optional): RGB colour per class; defaults to
            :func:`~dinov3_mm.visualization.seg_overlay.default_palette`.
        title (str): Title of the overlay tile. Defaults to ``'mask'``.
        alpha (float): Overlay opacity. Defaults to 0.5.
        ignore_index (int): Unlabelled pixels, left as the image.
            Defaults to 255.
        min_size (int): Smaller images are enlarged. Defaults to 128.
        max_size (int): Larger images are shrunk. Defaults to 512.

    Returns:
        np.ndarray: RGB uint8 picture.
    """
    image = to_rgb_uint8(image)
    mask = np.asarray(mask).astype(np.int64)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f'mask is {mask.shape} but the image is '
                         f'{image.shape[:2]} (HxW).')
    labels = [int(v) for v in np.unique(mask) if v != ignore_index]
    if palette is None:
        size = max([len(classes or ())] + [v + 1 for v in labels] + [1])
        palette = default_palette(size)
    colours = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    shown = _scaled(image, min_size, max_size)
    h, w = shown.shape[:2]
    small = cv2.resize(mask.astype(np.float32), (w, h),
                       interpolation=cv2.INTER_NEAREST).astype(np.int64)
    tiles = [('image', shown),
             (title, overlay_mask(shown, small, colours, alpha,
                                  ignore_index))]
    width = 2 * w + GAP
    names = [(v, class_name(v, classes)) for v in labels if v >= 0]
    legend = _legend(names, colours, width)
    canvas = np.full((LINE_HEIGHT + h + legend.shape[0], width, 3), _WHITE,
                     np.uint8)
    for i, (name, tile) in enumerate(tiles):
        x = i * (w + GAP)
        canvas[LINE_HEIGHT:LINE_HEIGHT + h, x:x + w] = tile
        _put_text(canvas, name, x + 2, 0, TEXT_COLOR)
    canvas[LINE_HEIGHT + h:] = legend
    return canvas


def draw_boxes(image: np.ndarray,
               bboxes: np.ndarray,
               labels: Optional[Sequence[int]] = None,
               classes: Optional[Sequence[str]] = None,
               palette: Optional[Sequence[Sequence[int]]] = None,
               scores: Optional[Sequence[float]] = None) -> np.ndarray:
    """Boxes ``(N, 4)`` in ``x1, y1, x2, y2`` pixels drawn on the image, each
    with its class name (and score), coloured by class.

    Returns:
        np.ndarray: RGB uint8 copy of the image.
    """
    out = to_rgb_uint8(image).copy()
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    labels = ([0] * len(bboxes) if labels is None else
              [int(v) for v in labels])
    size = max([len(classes or ())] + [v + 1 for v in labels] + [1])
    colours = np.asarray(palette if palette is not None else
                         default_palette(size + 1)[1:]).reshape(-1, 3)
    for i, (box, label) in enumerate(zip(bboxes, labels)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        colour = tuple(int(c) for c in colours[label % len(colours)])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        text = class_name(label, classes)
        if scores is not None:
            text += f' {float(scores[i]):.2f}'
        cv2.putText(out, text, (x1 + 2, max(y1 - 3, 10)), _FONT, _FONT_SCALE,
                    colour, 1, cv2.LINE_AA)
    return out
