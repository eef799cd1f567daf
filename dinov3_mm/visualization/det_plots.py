"""Detection pictures: predictions drawn on images, COCO PR curves.

:func:`draw_detections` paints translucent instance masks and boxes with
class name and score on an RGB image (OpenCV, numpy).
:func:`plot_det_pr_curves` draws the precision-recall curves of a COCO
evaluation (matplotlib on an Agg canvas, like :mod:`.cls_plots`); it is also
registered in ``VISUALIZERS`` so that
:class:`~dinov3_mm.evaluation.CocoMetric` (a lower layer) can find it.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from dinov3_mm.registry import VISUALIZERS
from .cls_plots import (MAX_FAINT_CURVES, MAX_LEGEND_CURVES, _new_figure, _np,
                        _save, _short)
from .sample_drawing import draw_boxes, to_rgb_uint8
from .seg_overlay import default_palette

#: Opacity of the mask colour over the image.
MASK_ALPHA = 0.45


def _palette(num_classes: int,
             palette: Optional[Sequence[Sequence[int]]]) -> np.ndarray:
    if palette is None:  # skip the black first colour of the default palette
        palette = default_palette(num_classes + 1)[1:]
    return np.asarray(palette, dtype=np.int64).reshape(-1, 3)


def draw_detections(image_rgb: np.ndarray,
                    bboxes,
                    labels,
                    scores=None,
                    masks=None,
                    class_names: Optional[Sequence[str]] = None,
                    score_thr: float = 0.3,
                    palette: Optional[Sequence[Sequence[int]]] = None,
                    alpha: float = MASK_ALPHA) -> np.ndarray:
    """Draw detections (boxes, class names, scores, masks) on an image.

    Args:
        image_rgb (ndarray): ``(H, W, 3)`` RGB image (uint8, or floats in
            ``[0, 1]``).
        bboxes (ndarray | Tensor): ``(K, 4)`` ``x1, y1, x2, y2`` pixels.
        labels (ndarray | Tensor): ``(K,)`` class indices.
        scores (ndarray | Tensor, optional): ``(K,)`` scores; without them
            every detection is drawn and no score is written.
        masks (ndarray | Tensor, optional): ``(K, H, W)`` binary masks.
        class_names (Sequence[str], optional): Names; indices if None.
        score_thr (float): Detections scoring below are left out.
            Defaults to 0.3.
        palette (Sequence, optional): RGB colour per class; defaults to
            :func:`~dinov3_mm.visualization.default_palette` (without its
            black first colour).
        alpha (float): Mask opacity. Defaults to 0.45.

    Returns:
        ndarray: RGB uint8 ``(H, W, 3)`` copy of the image with the drawing.
    """
    out = to_rgb_uint8(image_rgb).copy()
    bboxes = _np(bboxes).astype(np.float64).reshape(-1, 4)
    labels = _np(labels).astype(np.int64).reshape(-1)
    keep = np.ones(len(labels), bool)
    if scores is not None:
        scores = _np(scores).astype(np.float64).reshape(-1)
        keep = scores >= score_thr
    num = max([len(class_names or ())] +
              [int(labels.max()) + 1 if labels.size else 0] + [1])
    colours = _palette(num, palette)
    if masks is not None:
        masks = _np(masks).astype(bool)
        if masks.shape[1:] != out.shape[:2]:
            raise ValueError(f'Masks {masks.shape[1:]} do not match the '
                             f'image {out.shape[:2]}.')
        for i in np.flatnonzero(keep):
            region = masks[i]
            colour = colours[labels[i] % len(colours)]
            out[region] = np.clip((1 - alpha) * out[region] + alpha * colour,
                                  0, 255).astype(np.uint8)
            contours, _ = cv2.findContours(region.astype(np.uint8),
                                           cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour),
                             1)
    if not keep.any():
        return out
    return draw_boxes(out, bboxes[keep], labels[keep], class_names, colours,
                      scores[keep] if scores is not None else None)


@VISUALIZERS.register_module(name='plot_det_pr_curves')
def plot_det_pr_curves(precision,
                       rec_thrs,
                       iou_thrs,
                       classes: Optional[Sequence[str]],
                       path: str,
                       title: Optional[str] = None,
                       area_index: int = 0,
                       max_det_index: int = -1) -> str:
    """Draw the precision-recall curves of a COCO evaluation.

    Left: one curve per class at IoU 0.50 (faint curves without legend for
    many classes) and their mean in bold. Right: the class mean at IoU 0.50,
    0.75 and averaged over 0.50:0.95. A class without ground truth has no
    curve.

    Args:
        precision (ndarray): COCO's ``(T, R, K, A, M)`` precision array
            (-1 where undefined), e.g. ``coco_evaluate(...)['precision']``.
        rec_thrs (ndarray): ``(R,)`` recall thresholds.
        iou_thrs (ndarray): ``(T,)`` IoU thresholds.
        classes (Sequence[str], optional): ``K`` class names.
        path (str): Output PNG file.
        title (str, optional): Figure title.
        area_index (int): Area range (0 all, 1 small, 2 medium, 3 large).
        max_det_index (int): Index into COCO's ``maxDets``. Defaults to the
            last (largest).

    Returns:
        str: ``path``.
    """
    precision = _np(precision).astype(np.float64)
    if precision.ndim != 5:
        raise ValueError('precision must be COCO\'s (T, R, K, A, M) array, '
                         f'got shape {precision.shape}.')
    rec = _np(rec_thrs).astype(np.float64)
    ious = _np(iou_thrs).astype(np.float64)
    prec = precision[:, :, :, area_index, max_det_index]  # (T, R, K)
    num_classes = prec.shape[2]
    names = (list(classes)
             if classes is not None and len(classes) == num_classes else
             [str(k) for k in range(num_classes)])
    valid = (prec > -1).all(axis=1)  # (T, K): class has ground truth
    t50 = int(np.argmin(np.abs(ious - 0.5)))
    t75 = int(np.argmin(np.abs(ious - 0.75)))

    def class_mean(curves: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return curves[:, ok].mean(axis=1) if ok.any() else np.zeros(len(rec))

    fig = _new_figure(12, 5)
    ax = fig.add_subplot(1, 2, 1)
    shown = np.flatnonzero(valid[t50])
    few = len(shown) <= MAX_LEGEND_CURVES
    for k in shown[:MAX_FAINT_CURVES]:
        ap = prec[t50, :, k].mean()
        if few:
            ax.plot(rec,
                    prec[t50, :, k],
                    lw=1.2,
                    label=f'{_short(names[k])} (AP50 {ap:.3f})')
        else:
            ax.plot(rec, prec[t50, :, k], lw=0.6, alpha=0.3, color='gray')
    mean50 = class_mean(prec[t50], valid[t50])
    ax.plot(rec,
            mean50,
            lw=2.5,
            color='black',
            label=f'mean (AP50 {mean50.mean():.3f})')
    ax.set_title('per class, IoU 0.50')
    ax2 = fig.add_subplot(1, 2, 2)
    for t, label in ((t50, 'IoU 0.50'), (t75, 'IoU 0.75')):
        curve = class_mean(prec[t], valid[t])
        ax2.plot(rec, curve, lw=1.8, label=f'{label} (AP {curve.mean():.3f})')
    all_curves = [class_mean(prec[t], valid[t]) for t in range(len(ious))]
    mean_all = np.mean(all_curves, axis=0)
    ax2.plot(rec,
             mean_all,
             lw=2.5,
             color='black',
             label=f'IoU 0.50:0.95 (AP {mean_all.mean():.3f})')
    ax2.set_title('class mean')
    for axis in (ax, ax2):
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel('recall')
        axis.set_ylabel('precision')
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc='best')
    if title:
        fig.suptitle(title)
    return _save(fig, path)
