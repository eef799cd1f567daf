"""Detections drawn on images; COCO PR curves as PNG."""
import numpy as np
import pytest
import torch

from dinov3_mm.evaluation.functional.detection import evaluate_detections
from dinov3_mm.registry import VISUALIZERS
from dinov3_mm.visualization import draw_detections, plot_det_pr_curves


def _gray(h=64, w=80):
    return np.full((h, w, 3), 128, np.uint8)


def test_box_outline_is_drawn_inside_untouched():
    image = _gray()
    out = draw_detections(image,
                          np.array([[10, 20, 50, 60]]), [0], [0.9],
                          class_names=['car'])
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[40, 10] != 128).any()  # left edge
    assert (out[20, 30] != 128).any()  # top edge
    assert (out[40, 30] == 128).all()  # inside, no mask
    assert (image == 128).all()  # input not modified


def test_mask_colours_its_pixels_only():
    masks = torch.zeros(1, 64, 80, dtype=torch.bool)
    masks[0, 30:40, 30:40] = True
    out = draw_detections(_gray(),
                          torch.tensor([[28., 28., 42., 42.]]),
                          torch.tensor([1]),
                          torch.tensor([0.8]),
                          masks=masks,
                          class_names=['a', 'b'],
                          palette=[[255, 0, 0], [0, 0, 255]])
    centre = out[35, 35].astype(int)
    assert centre[2] > 128 + 40 and centre[0] < 128  # blended towards blue
    assert (out[5, 5] == 128).all()  # far from the object
    assert (out[50, 60] == 128).all()


def test_low_scores_are_left_out():
    out = draw_detections(_gray(), [[10, 10, 30, 30]], [0], [0.1],
                          masks=np.ones((1, 64, 80), bool),
                          score_thr=0.3)
    assert (out == 128).all()
    with pytest.raises(ValueError, match='do not match'):
        draw_detections(_gray(), [[0, 0, 1, 1]], [0], [1.0],
                        masks=np.ones((1, 8, 8), bool))


def test_pr_curves_png_and_registry(tmp_path):
    images = [
        dict(img_id=1,
             height=64,
             width=64,
             ori_gt=dict(bboxes=np.array([[0, 0, 10, 10], [20, 20, 40, 40]],
                                         np.float32),
                         labels=np.array([0, 1]),
                         masks=None))
    ]
    preds = [
        dict(img_id=1,
             bboxes=np.array([[0, 0, 10, 9], [50, 50, 60, 60]], np.float32),
             labels=np.array([0, 1]),
             scores=np.array([0.9, 0.5]))
    ]
    _, details = evaluate_detections(images, preds, ['a', 'b'])
    d = details['bbox']
    path = plot_det_pr_curves(d['precision'],
                              d['rec_thrs'],
                              d['iou_thrs'], ['a', 'b'],
                              str(tmp_path / 'sub' / 'pr.png'),
                              title='bbox')
    data = (tmp_path / 'sub' / 'pr.png').read_bytes()
    assert path.endswith('pr.png') and data[:4] == b'\x89PNG'
    assert len(data) > 5000
    assert VISUALIZERS.get('plot_det_pr_curves') is plot_det_pr_curves
    with pytest.raises(ValueError, match='T, R, K, A, M'):
        plot_det_pr_curves(np.zeros((3, 3)), [], [], None,
                           str(tmp_path / 'x.png'))
