"""The instance shapes generator and a full detection train pipeline."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from dinov3_mm.datasets import (INSTANCE_CLASSES, CocoDetDataset,
                                write_instance_shapes_dataset)
from dinov3_mm.structures import DetDataSample


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return write_instance_shapes_dataset(
        str(tmp_path_factory.mktemp('inst')), num_train=12, num_val=4,
        num_test=3, size=80, max_objects=5, seed=3)


def test_layout_and_coco_loading(root):
    for split, num in (('train', 12), ('val', 4), ('test', 3)):
        assert len(list(Path(root, split).glob('*.png'))) == num
        coco = COCO(str(Path(root, 'annotations', f'instances_{split}.json')))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
            INSTANCE_CLASSES)
        assert len(coco.getImgIds()) == num
    coco = COCO(str(Path(root, 'annotations', 'instances_train.json')))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 12
    for ann in anns:
        mask = coco.annToMask(ann)
        assert mask.sum() == ann['area'] > 0 and ann['iscrowd'] == 0
        ys, xs = np.nonzero(mask)
        x0, y0 = xs.min(), ys.min()
        assert ann['bbox'] == [x0, y0, xs.max() + 1 - x0, ys.max() + 1 - y0]
    # visible masks of one image never overlap
    for img_id in coco.getImgIds():
        masks = [coco.annToMask(a) for a in
                 coco.loadAnns(coco.getAnnIds(imgIds=img_id))]
        if masks:
            assert np.stack(masks).sum(0).max() == 1
    negatives = [i for i in coco.getImgIds() if not coco.getAnnIds(imgIds=i)]
    assert negatives  # at least one image without objects per 10+


def test_deterministic_by_seed(root, tmp_path):
    again = write_instance_shapes_dataset(
        str(tmp_path / 'again'), num_train=12, num_val=4, num_test=3,
        size=80, max_objects=5, seed=3)

    def digest(base):
        h = hashlib.sha1()
        for path in sorted(Path(base).rglob('*')):
            if path.is_file():
                h.update(path.read_bytes())
        return h.hexdigest()

    assert digest(root) == digest(again)


def test_objects_touch_and_overlap(tmp_path):
    from dinov3_mm.datasets.synthetic_instances import draw_instance_sample
    rng = np.random.default_rng(0)
    occluded = 0
    for _ in range(20):
        _, objects = draw_instance_sample(96, rng, 6)
        labels = {label for label, _ in objects}
        assert labels <= set(range(len(INSTANCE_CLASSES)))
        for _, mask in objects:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            assert mask_utils.area(rle) == mask.sum()
        occluded += len(objects)
    assert occluded > 40


def test_full_train_pipeline_packs_det_samples(root):
    pipeline = [
        dict(type='LoadImage'),
        dict(type='LoadDetAnnotations', with_mask=True),
        dict(type='DetResize', scales=[(64, 64), (96, 96)], size_divisor=16),
        dict(type='DetRandomCrop', ratio_range=(0.6, 1.0), min_visible=0.3),
        dict(type='DetRandomFlip', prob=0.5),
        dict(type='DetPhotometric'),
        dict(type='PackDetInputs'),
    ]
    ds = CocoDetDataset(ann_file='annotations/instances_train.json',
                        data_root=root, data_prefix=dict(img='train/'),
                        with_mask=True, pipeline=pipeline)
    assert ds.metainfo['cat_ids'] == (1, 2, 3, 4)
    np.random.seed(0)
    for i in range(len(ds)):
        out = ds[i]
        sample = out['data_samples']
        assert isinstance(sample, DetDataSample)
        img = out['inputs']
        assert img.dtype == torch.uint8 and img.shape[0] == 3
        gt = sample.gt_instances
        h, w = img.shape[1:]
        assert sample.img_shape == (h, w) and sample.ori_shape == (80, 80)
        assert gt.masks.shape == (len(gt), h, w)
        assert gt.masks.dtype == torch.bool
        assert gt.labels.dtype == torch.int64
        for box, mask in zip(gt.bboxes, gt.masks):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            np.testing.assert_allclose(
                box.numpy(), [xs.min(), ys.min(), xs.max() + 1,
                              ys.max() + 1], atol=1.0)
        ori = sample.ori_gt
        info = json.load(open(Path(root, 'annotations',
                                   'instances_train.json')))
        n = sum(a['image_id'] == sample.img_id for a in info['annotations'])
        assert len(ori['bboxes']) == len(ori['masks']) == n
        assert {'scale_factor', 'border', 'flip', 'classes'} <= set(
            sample.metainfo)


def test_generator_tool_instances(tmp_path, capsys):
    import importlib.util
    tool_path = Path(__file__).resolve().parents[2] / 'tools' / \
        'generate_shapes_dataset.py'
    spec = importlib.util.spec_from_file_location('gen_tool', tool_path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'inst'
    args = [str(out), '--instances', '--train', '3', '--val', '2', '--test',
            '1', '--size', '48', '--max-objects', '2']
    assert tool.main(args) == 0
    assert json.loads((out / 'shapes_dataset.json').read_text()) == dict(
        task='instances', train=3, val=2, test=1, size=48, max_objects=2,
        seed=0)
    assert len(list((out / 'val').glob('*.png'))) == 2
    assert tool.main(args) == 0  # same settings: kept
    assert 'keeping it' in capsys.readouterr().out
    assert tool.main(args[:-1] + ['3']) == 1  # other settings: refused
