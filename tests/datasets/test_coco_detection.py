"""CocoDetDataset: loading, label mapping, masks, bad input."""
import json
import logging

import numpy as np
import pytest
from mmengine.logging import MMLogger
from pycocotools import mask as mask_utils

from dinov3_mm.datasets import CocoDetDataset
from dinov3_mm.datasets.transforms import LoadDetAnnotations

W, H = 40, 30


@pytest.fixture
def log():
    """Messages logged through mmengine's current logger."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _rle_box_mask():
    mask = np.zeros((H, W), np.uint8)
    mask[5:15, 20:30] = 1
    return mask


def write_coco(root, write_png, annotations=None, images=None):
    """Two images (a.png with objects, b.png without) and categories 3, 7."""
    (root / 'imgs').mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(('a.png', 'b.png')):
        write_png(root / 'imgs' / name, size=(W, H), seed=i)
    rle = mask_utils.encode(np.asfortranarray(_rle_box_mask()))
    if annotations is None:
        annotations = [
            dict(id=10, image_id=1, category_id=7, bbox=[2, 3, 10, 5],
                 iscrowd=0, segmentation=[[2, 3, 12, 3, 12, 8, 2, 8]]),
            dict(id=11, image_id=1, category_id=3, bbox=[20, 5, 10, 10],
                 iscrowd=0, segmentation=dict(
                     size=[H, W], counts=rle['counts'].decode('ascii'))),
            # uncompressed RLE crowd region: columns 0-1 fully set
            dict(id=12, image_id=1, category_id=3, bbox=[0, 0, 2, 30],
                 iscrowd=1, segmentation=dict(
                     size=[H, W], counts=[0, 2 * H, (W - 2) * H])),
        ]
    data = dict(
        images=images or [dict(id=1, file_name='a.png', height=H, width=W),
                          dict(id=2, file_name='b.png', height=H, width=W)],
        annotations=annotations,
        categories=[dict(id=7, name='dog'), dict(id=3, name='cat')])
    path = root / 'ann.json'
    path.write_text(json.dumps(data))
    return str(path)


def build(root, **kwargs):
    return CocoDetDataset(ann_file='ann.json', data_root=str(root),
                          data_prefix=dict(img='imgs'), **kwargs)


def test_loads_boxes_labels_crowd_and_negatives(tmp_path, write_png):
    write_coco(tmp_path, write_png)
    ds = build(tmp_path, with_mask=True)
    assert ds.metainfo['classes'] == ('cat', 'dog')  # sorted by id
    assert ds.metainfo['cat_ids'] == (3, 7)
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_id'] == 1 and info['img_path'].endswith('a.png')
    assert info['classes'] == ('cat', 'dog')
    boxes = [i['bbox'] for i in info['instances']]
    assert boxes[0] == [2, 3, 12, 8]  # xywh -> xyxy
    assert [i['bbox_label'] for i in info['instances']] == [1, 0, 0]
    assert [i['ignore_flag'] for i in info['instances']] == [0, 0, 1]
    assert ds.get_data_info(1)['instances'] == []  # a valid negative


def test_filter_empty_drops_negatives_in_training_only(tmp_path, write_png):
    write_coco(tmp_path, write_png)
    assert len(build(tmp_path, filter_empty=True)) == 1
    assert len(build(tmp_path, filter_empty=True, test_mode=True)) == 2


def test_polygon_and_rle_masks_decode(tmp_path, write_png):
    write_coco(tmp_path, write_png)
    ds = build(tmp_path, with_mask=True)
    out = LoadDetAnnotations(with_mask=True)(ds.get_data_info(0))
    masks = out['gt_masks']
    assert masks.shape == (3, H, W) and masks.dtype == np.uint8
    poly = np.zeros((H, W), np.uint8)
    poly[3:8, 2:12] = 1  # the polygon's area, x 2-12 and y 3-8
    assert np.array_equal(masks[0], poly)
    assert np.array_equal(masks[1], _rle_box_mask())
    assert masks[2][:, :2].all() and not masks[2][:, 2:].any()
    ori = out['ori_gt']
    assert ori['iscrowd'].tolist() == [False, False, True]
    assert all(isinstance(r['counts'], str) for r in ori['masks'])
    assert np.array_equal(
        mask_utils.decode(dict(size=ori['masks'][2]['size'],
                               counts=ori['masks'][2]['counts'].encode())),
        masks[2])


def _ann(**kw):
    ann = dict(id=5, image_id=1, category_id=7, bbox=[2, 3, 10, 5],
               iscrowd=0, segmentation=[[2, 3, 12, 3, 12, 8]])
    ann.update(kw)
    return ann


@pytest.mark.parametrize('ann, words', [
    (_ann(bbox=[30, 3, 20, 5]), 'leaves the 40x30'),
    (_ann(bbox=[2, 3, 0, 5]), 'zero or negative'),
    (_ann(category_id=99), 'category_id 99'),
    (_ann(segmentation=[[2, 3, 12, 3]]), 'at least 3 points'),
    (_ann(segmentation=dict(size=[10, 10], counts='abc')), 'RLE size'),
])
def test_bad_annotation_names_file_and_id(tmp_path, write_png, ann, words):
    ann_file = write_coco(tmp_path, write_png, annotations=[ann])
    with pytest.raises(ValueError) as exc:
        build(tmp_path, with_mask=True)
    msg = str(exc.value)
    assert ann_file in msg and 'annotation id 5' in msg and words in msg
    assert 'skip_invalid=True' in msg


def test_missing_image_names_file_and_id(tmp_path, write_png):
    images = [dict(id=1, file_name='a.png', height=H, width=W),
              dict(id=9, file_name='gone.png', height=H, width=W)]
    ann_file = write_coco(tmp_path, write_png, images=images)
    with pytest.raises(FileNotFoundError) as exc:
        build(tmp_path)
    assert ann_file in str(exc.value) and 'image id 9' in str(exc.value)
    assert 'gone.png' in str(exc.value)


def test_skip_invalid_counts_and_logs(tmp_path, write_png, log):
    anns = [_ann(id=1), _ann(id=2, bbox=[30, 3, 20, 5]),
            _ann(id=3, category_id=99), _ann(id=4, bbox=[1, 1, 0, 0]),
            _ann(id=6, image_id=9)]
    images = [dict(id=1, file_name='a.png', height=H, width=W),
              dict(id=8, file_name='gone.png', height=H, width=W)]
    write_coco(tmp_path, write_png, annotations=anns, images=images)
    ds = build(tmp_path, skip_invalid=True)
    assert len(ds) == 1 and len(ds.get_data_info(0)['instances']) == 1
    assert dict(ds.skipped) == dict(box_outside=1, unknown_category=1,
                                    degenerate_box=1, unknown_image=1,
                                    missing_image=1)
    warnings = [r.getMessage() for r in log if r.levelno == logging.WARNING]
    assert any('skipped 5 invalid item(s)' in m and '1 box_outside' in m
               for m in warnings)
