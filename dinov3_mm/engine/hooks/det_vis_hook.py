"""Save ground truth | prediction panels of detection validation and test
samples as PNG files."""
from typing import Optional, Sequence

import cv2
import numpy as np

from dinov3_mm.registry import HOOKS

from .sample_panel_hook import SamplePanelHook

_GAP = 4
_HEADER = 18


def _numpy(value) -> Optional[np.ndarray]:
    if value is None:
        return None
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _fallback_draw(image: np.ndarray, bboxes: np.ndarray,
                   labels: np.ndarray, scores: Optional[np.ndarray],
                   masks: Optional[np.ndarray], class_names, score_thr: float
                   ) -> np.ndarray:
    """Boxes, ``name score`` captions and blended masks, with OpenCV."""
    from dinov3_mm.visualization.seg_overlay import default_palette
    out = image.copy()
    num = max([len(class_names or ())] + [int(v) + 2 for v in labels])
    palette = np.asarray(default_palette(num + 1)[1:], np.float32)
    keep = (np.ones(len(labels), bool) if scores is None else
            np.asarray(scores) >= score_thr)
    for i in np.flatnonzero(keep):
        colour = palette[int(labels[i]) % len(palette)]
        if masks is not None:
            region = np.asarray(masks[i], bool)
            out[region] = (0.5 * out[region] + 0.5 * colour).astype(np.uint8)
    for i in np.flatnonzero(keep):
        colour = tuple(int(c) for c in palette[int(labels[i]) % len(palette)])
        x1, y1, x2, y2 = (int(round(float(v))) for v in bboxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        label = int(labels[i])
        name = (str(class_names[label]) if class_names is not None
                and 0 <= label < len(class_names) else str(label))
        text = name if scores is None else f'{name} {float(scores[i]):.2f}'
        cv2.putText(out, text, (x1, max(8, y1 - 2)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.3, colour, 1, cv2.LINE_AA)
    return out


def draw_instances(image: np.ndarray, bboxes, labels, scores=None,
                   masks=None, class_names: Optional[Sequence[str]] = None,
                   score_thr: float = 0.0) -> np.ndarray:
    """Draw detections (or ground truth, ``scores=None``) on an RGB image.

    Uses :func:`dinov3_mm.visualization.det_plots.draw_detections` when it
    is available, else a plain OpenCV drawing.

    Args:
        image (np.ndarray): RGB uint8 ``(H, W, 3)``.
        bboxes: ``(N, 4)`` xyxy pixels of ``image``.
        labels: ``(N,)`` class indices.
        scores (optional): ``(N,)``; None for ground truth.
        masks (optional): ``(N, H, W)`` 0/1 masks.
        class_names (sequence[str], optional): Names by class index.
        score_thr (float): Detections below it are not drawn.

    Returns:
        np.ndarray: The drawn RGB image (a copy).
    """
    bboxes = np.asarray(_numpy(bboxes), np.float32).reshape(-1, 4)
    labels = np.asarray(_numpy(labels), np.int64).reshape(-1)
    scores = None if scores is None else np.asarray(_numpy(scores),
                                                    np.float32)
    masks = None if masks is None else np.asarray(_numpy(masks))
    try:
        from dinov3_mm.visualization.det_plots import draw_detections
    except ImportError:
        draw_detections = None
    if draw_detections is not None:
        drawn_scores = (np.ones(len(labels), np.float32)
                        if scores is None else scores)
        return draw_detections(image, bboxes, labels, drawn_scores,
                               masks=masks, class_names=class_names,
                               score_thr=score_thr)
    return _fallback_draw(image, bboxes, labels, scores, masks, class_names,
                          score_thr)


def side_by_side(tiles: Sequence[np.ndarray], titles: Sequence[str]
                 ) -> np.ndarray:
    """Tiles of one height next to each other, each under its title."""
    height = max(t.shape[0] for t in tiles)
    width = sum(t.shape[1] for t in tiles) + _GAP * (len(tiles) - 1)
    panel = np.full((height + _HEADER, width, 3), 255, np.uint8)
    x = 0
    for tile, title in zip(tiles, titles):
        panel[_HEADER:_HEADER + tile.shape[0], x:x + tile.shape[1]] = tile
        cv2.putText(panel, title, (x + 2, _HEADER - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += tile.shape[1] + _GAP
    return panel


def _decode_rles(rles, hw) -> Optional[np.ndarray]:
    if rles is None:
        return None
    from pycocotools import mask as mask_utils
    if not len(rles):
        return np.zeros((0, ) + tuple(hw), np.uint8)
    coded = [dict(size=r['size'], counts=r['counts'].encode('ascii')
                  if isinstance(r['counts'], str) else r['counts'])
             for r in rles]
    return np.ascontiguousarray(mask_utils.decode(coded).transpose(2, 0, 1))


@HOOKS.register_module()
class DetVisHook(SamplePanelHook):
    """Draw ground truth next to predictions for the first evaluated samples.

    For each of the first ``num_samples`` samples the hook writes a panel
    (ground-truth boxes and masks | predicted boxes, labels, scores and
    masks at ``score_thr``) in original-image pixels to::

        {work_dir}/{out_dir}/val/epoch_{n}/<image name>.png   (validation;
                                      iter_{n} for iteration-based training)
        {work_dir}/{out_dir}/test/<image name>.png            (testing)

    The image is read again from ``img_path``; the ground truth is the
    sample's ``ori_gt`` (crowd objects left out). Class names come from the
    dataset's metainfo. Only the main process draws; a drawing error is
    logged as a warning and never stops training.

    Args:
        num_samples (int): Samples drawn per evaluation. Defaults to 8.
        interval (int): Draw every ``interval``-th validation (tests are
            always drawn). Defaults to 1.
        out_dir (str): Folder, relative to the work dir unless absolute.
            Defaults to ``'vis'``.
        score_thr (float): Smallest drawn prediction score. Defaults to 0.3.
        min_tile_size (int): Small images are enlarged to at least this
            size. Defaults to 256.
    """
    def __init__(self,
                 num_samples: int = 8,
                 interval: int = 1,
                 out_dir: str = 'vis',
                 score_thr: float = 0.3,
                 min_tile_size: int = 256) -> None:
        super().__init__(num_samples, interval, out_dir)
        self.score_thr = score_thr
        self.min_tile_size = min_tile_size

    def panel(self, runner, sample, batch_input, dataset_meta: dict
              ) -> np.ndarray:
        """The ground truth | prediction panel of one predicted sample."""
        from dinov3_mm.datasets.transforms.loading import read_image
        classes = dataset_meta.get('classes')
        classes = [str(c) for c in classes] if classes else None
        meta = dict(sample.metainfo)
        image = read_image(meta['img_path'])
        pred = sample.pred_instances
        pred_masks = pred.get('masks') if 'masks' in pred else None
        tiles = [draw_instances(image, pred.bboxes, pred.labels,
                                pred.scores, pred_masks, classes,
                                self.score_thr)]
        titles = [f'prediction (score >= {self.score_thr:g})']
        gt = meta.get('ori_gt')
        if gt is not None:
            keep = ~np.asarray(gt.get('iscrowd', np.zeros(len(gt['labels']),
                                                          bool)), bool)
            masks = _decode_rles(gt.get('masks'), image.shape[:2])
            tiles.insert(0, draw_instances(
                image, np.asarray(gt['bboxes'])[keep],
                np.asarray(gt['labels'])[keep], None,
                None if masks is None else masks[keep], classes))
            titles.insert(0, 'ground truth')
        factor = max(1.0, self.min_tile_size / max(image.shape[:2]))
        if factor > 1:
            size = (int(round(image.shape[1] * factor)),
                    int(round(image.shape[0] * factor)))
            tiles = [cv2.resize(t, size, interpolation=cv2.INTER_NEAREST)
                     for t in tiles]
        return side_by_side(tiles, titles)
