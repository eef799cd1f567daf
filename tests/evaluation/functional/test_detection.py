"""COCO evaluation functions against cases computable by hand."""
import math

import numpy as np
import pytest
import torch

from dinov3_mm.evaluation.functional.detection import (
    COCO_BACKENDS, build_coco_gt, coco_evaluate, encode_mask_rle,
    evaluate_detections, predictions_to_coco, rle_area, xyxy_to_xywh)

CLASSES = ('a', 'b')


def _image(img_id, boxes, labels, size=(64, 64), iscrowd=None, masks=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return dict(
        img_id=img_id,
        height=size[0],
        width=size[1],
        ori_gt=dict(
            bboxes=boxes,
            labels=np.asarray(labels, np.int64),
            iscrowd=None if iscrowd is None else np.asarray(iscrowd, bool),
            masks=masks))


def _pred(img_id, boxes, labels, scores, masks=None):
    return dict(img_id=img_id,
                bboxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                labels=np.asarray(labels, np.int64),
                scores=np.asarray(scores, np.float32),
                masks=masks)


def _rect_masks(boxes, size=(64, 64)):
    masks = np.zeros((len(boxes), ) + size, bool)
    for m, (x1, y1, x2, y2) in zip(masks, boxes):
        m[y1:y2, x1:x2] = True
    return masks


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_rle_roundtrip_counts_str_and_area(backend):
    masks = _rect_masks([(0, 0, 5, 4), (10, 20, 30, 22)])
    rles = encode_mask_rle(torch.from_numpy(masks), backend)
    assert [r['size'] for r in rles] == [[64, 64], [64, 64]]
    assert all(isinstance(r['counts'], str) for r in rles)
    assert rle_area(rles, backend).tolist() == [20.0, 40.0]
    from pycocotools import mask as mask_utils
    decoded = mask_utils.decode(
        [dict(size=r['size'], counts=r['counts'].encode()) for r in rles])
    assert np.array_equal(decoded.transpose(2, 0, 1).astype(bool), masks)
    assert encode_mask_rle(np.zeros((0, 8, 8), bool)) == []


def test_xywh_and_category_ids():
    assert xyxy_to_xywh([[1, 2, 11, 7]]).tolist() == [[1, 2, 10, 5]]
    preds = [_pred(5, [[1, 2, 11, 7]], [1], [0.5])]
    out = predictions_to_coco(preds, 'bbox', cat_ids=[3, 7])
    assert out == [
        dict(image_id=5, category_id=7, bbox=[1.0, 2.0, 10.0, 5.0], score=0.5)
    ]
    gt = build_coco_gt([_image(5, [[0, 0, 10, 10]], [1])], CLASSES, [3, 7])
    assert gt['annotations'][0]['category_id'] == 7
    assert gt['annotations'][0]['area'] == 100.0
    assert gt['categories'] == [dict(id=3, name='a'), dict(id=7, name='b')]
    with pytest.raises(ValueError, match='category ids'):
        build_coco_gt([], CLASSES, [1])
    with pytest.raises(ValueError, match='outside'):
        predictions_to_coco([_pred(1, [[0, 0, 1, 1]], [2], [1])], 'bbox',
                            [3, 7])


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_perfect_predictions_give_one(backend):
    # a small (10x10) and a large (100x100) object; no medium object
    images = [
        _image(1, [[0, 0, 10, 10]], [0], (128, 128)),
        _image(2, [[10, 10, 110, 110], [0, 0, 10, 10]], [1, 0], (128, 128))
    ]
    preds = [
        _pred(1, [[0, 0, 10, 10]], [0], [0.9]),
        _pred(2, [[10, 10, 110, 110], [0, 0, 10, 10]], [1, 0], [0.8, 0.7])
    ]
    metrics, details = evaluate_detections(images,
                                           preds,
                                           CLASSES,
                                           backend=backend)
    for key in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_l', 'AR@100'):
        assert metrics[f'bbox_{key}'] == pytest.approx(1.0), key
    assert math.isnan(metrics['bbox_mAP_m'])  # no medium object
    assert [c['AP']
            for c in details['bbox']['per_class']] == pytest.approx([1.0, 1.0])
    assert details['bbox']['precision'].shape == (10, 101, 2, 4, 3)


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_single_box_iou_078_matches_six_of_ten_thresholds(backend):
    # IoU 0.78: matched at 0.50 ... 0.75 (6 thresholds), missed from 0.80
    images = [_image(1, [[0, 0, 10, 10]], [0])]
    preds = [_pred(1, [[0, 0, 10, 7.8]], [0], [0.9])]
    metrics, _ = evaluate_detections(images, preds, CLASSES, backend=backend)
    assert metrics['bbox_mAP'] == pytest.approx(0.6)
    assert metrics['bbox_mAP_50'] == pytest.approx(1.0)
    assert metrics['bbox_mAP_75'] == pytest.approx(1.0)


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_missed_object_halves_recall(backend):
    images = [_image(1, [[0, 0, 10, 10], [30, 30, 40, 40]], [0, 0])]
    preds = [_pred(1, [[0, 0, 10, 10]], [0], [0.9])]
    metrics, _ = evaluate_detections(images, preds, CLASSES, backend=backend)
    # precision 1 at the 51 recall thresholds 0.00 ... 0.50, 0 beyond
    assert metrics['bbox_mAP'] == pytest.approx(51 / 101)
    assert metrics['bbox_AR@100'] == pytest.approx(0.5)


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_false_positive_ranked_first_halves_precision(backend):
    images = [_image(1, [[0, 0, 10, 10]], [0])]
    preds = [_pred(1, [[40, 40, 50, 50], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
    metrics, _ = evaluate_detections(images, preds, CLASSES, backend=backend)
    assert metrics['bbox_mAP'] == pytest.approx(0.5)


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_prediction_on_crowd_is_ignored(backend):
    images = [
        _image(1, [[0, 0, 10, 10], [30, 30, 60, 60]], [0, 0],
               iscrowd=[False, True])
    ]
    preds = [_pred(1, [[32, 32, 50, 50], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
    metrics, _ = evaluate_detections(images, preds, CLASSES, backend=backend)
    assert metrics['bbox_mAP'] == pytest.approx(1.0)


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_masks_perfect_and_partial(backend):
    gt_masks = _rect_masks([(0, 0, 25, 4), (30, 30, 50, 50)])
    images = [
        _image(1, [[0, 0, 25, 4], [30, 30, 50, 50]], [0, 1],
               masks=encode_mask_rle(gt_masks))
    ]
    perfect = [
        _pred(1, [[0, 0, 25, 4], [30, 30, 50, 50]], [0, 1], [0.9, 0.8],
              masks=encode_mask_rle(gt_masks))
    ]
    metrics, _ = evaluate_detections(images,
                                     perfect,
                                     CLASSES,
                                     None, ('bbox', 'segm'),
                                     backend=backend)
    assert metrics['segm_mAP'] == pytest.approx(1.0)
    assert metrics['bbox_mAP'] == pytest.approx(1.0)
    # class a: 72 of its 100 pixels (mask IoU 0.72: 5 thresholds); b perfect
    partial_masks = _rect_masks([(0, 0, 18, 4), (30, 30, 50, 50)])
    partial = [dict(perfect[0], masks=encode_mask_rle(partial_masks))]
    metrics, details = evaluate_detections(images,
                                           partial,
                                           CLASSES,
                                           None, ('segm', ),
                                           backend=backend)
    per_class = [c['AP'] for c in details['segm']['per_class']]
    assert per_class == pytest.approx([0.5, 1.0])
    assert metrics['segm_mAP'] == pytest.approx(0.75)


@pytest.mark.parametrize('backend', COCO_BACKENDS)
def test_empty_predictions_and_images(backend):
    images = [_image(1, [[0, 0, 10, 10]], [0]), _image(2, [], [])]
    preds = [_pred(1, [], [], []), _pred(2, [], [], [])]
    metrics, _ = evaluate_detections(images, preds, CLASSES, backend=backend)
    assert metrics['bbox_mAP'] == 0.0
    # no ground truth at all: nothing is defined
    metrics, _ = evaluate_detections([_image(2, [], [])],
                                     [_pred(2, [[0, 0, 5, 5]], [0], [0.5])],
                                     CLASSES,
                                     backend=backend)
    assert math.isnan(metrics['bbox_mAP'])


def test_backends_agree_on_random_case():
    rng = np.random.default_rng(0)
    images, preds = [], []
    for i in range(6):
        boxes = rng.uniform(0, 40, (8, 2))
        boxes = np.concatenate([boxes, boxes + rng.uniform(4, 24, (8, 2))], 1)
        labels = rng.integers(0, 2, 8)
        images.append(_image(i, boxes, labels))
        preds.append(
            _pred(i, boxes + rng.normal(0, 2, boxes.shape),
                  np.where(rng.uniform(size=8) < 0.8, labels, 1 - labels),
                  rng.uniform(size=8)))
    values = [
        evaluate_detections(images, preds, CLASSES, backend=b)[0]
        for b in COCO_BACKENDS
    ]
    assert 0 < values[0]['bbox_mAP'] < 1
    for key in values[0]:
        assert values[0][key] == pytest.approx(values[1][key], nan_ok=True)


def test_segm_without_gt_masks_is_refused():
    gt = build_coco_gt([_image(1, [[0, 0, 10, 10]], [0])], CLASSES)
    with pytest.raises(ValueError, match='ground-truth masks'):
        coco_evaluate(gt, [], 'segm')
    with pytest.raises(ValueError, match='predicted masks'):
        predictions_to_coco([_pred(1, [[0, 0, 1, 1]], [0], [1])], 'segm')
