"""Detection inference API: detections in original pixels, COCO export."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dinov3_mm.apis import (detector_meta, inference_detector,
                            inference_model, init_model, is_detector,
                            predictions_to_coco, write_det_outputs)
from dinov3_mm.datasets.transforms.loading import read_image

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..',
                            'deploy'))
from det_helpers import make_det_checkpoint  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore')


@pytest.fixture(scope='module')
def det_model(tmp_path_factory):
    ckpt = make_det_checkpoint(str(tmp_path_factory.mktemp('det')),
                               with_mask=True)
    return ckpt, init_model(ckpt['config'], ckpt['checkpoint'])


def test_results_in_original_pixels(det_model):
    ckpt, model = det_model
    assert is_detector(model)
    results = inference_detector(model, ckpt['images'], batch_size=2)
    assert len(results) == len(ckpt['images'])
    for path, result in zip(ckpt['images'], results):
        h, w = read_image(path).shape[:2]
        assert result['ori_shape'] == (h, w)
        assert result['bboxes'].shape == (32, 4)
        assert (result['bboxes'][:, 0::2] <= w).all()
        assert (result['bboxes'][:, 1::2] <= h).all()
        assert (np.diff(result['scores']) <= 0).all()
        assert result['masks'].shape == (32, h, w)
        assert result['masks'].dtype == bool
    # arrays, a score threshold, RLE masks, the task dispatch
    array = read_image(ckpt['images'][1])
    thr = float(results[1]['scores'][4])
    one = inference_model(model, [array], score_thr=thr,
                          mask_format='rle')[0]
    assert len(one['scores']) == 5
    np.testing.assert_allclose(one['bboxes'], results[1]['bboxes'][:5],
                               atol=1e-4)
    from pycocotools import mask as mask_utils
    decoded = mask_utils.decode([dict(m, counts=m['counts'].encode())
                                 for m in one['masks']])
    assert (decoded.transpose(2, 0, 1).astype(bool) ==
            results[1]['masks'][:5]).mean() > 0.999
    with pytest.raises(ValueError, match='mask_format'):
        inference_detector(model, array, mask_format='png')


def test_coco_json_loads_and_evaluates(det_model, tmp_path):
    ckpt, model = det_model
    images = ckpt['images'][:3]  # the test split: ids 1..3 in order
    results = inference_detector(model, images, mask_format='rle')
    meta = detector_meta(model)
    assert meta == dict(classes=ckpt['classes'], cat_ids=ckpt['cat_ids'])
    written = write_det_outputs(images, results, str(tmp_path / 'out'),
                                score_thr=0.0, **meta)
    assert len(written['pictures']) == 3
    assert all(osp.isfile(p) for p in written['pictures'])
    coco = COCO(written['json'])
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 96
    assert sorted(coco.getCatIds()) == ckpt['cat_ids']
    gt = COCO(osp.join(ckpt['data'], 'annotations', 'instances_test.json'))
    for iou_type in ('bbox', 'segm'):
        dt = gt.loadRes(json.load(open(written['json']))['annotations'])
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        assert evaluator.eval['precision'].shape[2] == 4


def test_category_ids_default_to_label_plus_one(det_model, tmp_path):
    ckpt, model = det_model
    result = dict(bboxes=np.array([[1, 2, 5, 8]], np.float32),
                  scores=np.array([0.5], np.float32),
                  labels=np.array([2]), ori_shape=(10, 10))
    coco = predictions_to_coco(['a.png'], [result])
    assert coco['annotations'][0]['category_id'] == 3
    assert coco['annotations'][0]['bbox'] == [1.0, 2.0, 4.0, 6.0]
    coco = predictions_to_coco(['a.png'], [result], cat_ids=[7, 8, 9])
    assert coco['annotations'][0]['category_id'] == 9
    # no checkpoint meta: cat_ids come from the config's test set
    bare = init_model(ckpt['config'])
    torch.manual_seed(0)
    assert detector_meta(bare)['cat_ids'] == ckpt['cat_ids']
