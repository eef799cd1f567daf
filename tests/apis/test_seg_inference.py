"""Segmentation inference API: masks at the original size, written files."""
import csv
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from PIL import Image

import dinov3_mm  # noqa: F401
from dinov3_mm.apis import inference_model
from dinov3_mm.apis.inference import (build_test_pipeline, init_model,
                                      list_images)
from dinov3_mm.apis.seg_inference import (inference_segmentor, is_segmentor,
                                          save_index_png, segmentor_meta,
                                          write_seg_outputs)
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
from dinov3_mm.datasets.transforms.loading import read_image

CLASSES = ('background', 'circle', 'square', 'triangle')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_seg_config):
    """A tiny segmentor trained for one epoch: config, checkpoint, data."""
    tmp = tmp_path_factory.mktemp('seg_infer')
    data = write_seg_shapes_dataset(str(tmp / 'seg'), num_train=8,
                                    num_val=4, size=32)
    cfg = tiny_seg_config(data, tmp / 'work')
    Runner.from_cfg(cfg).train()
    cfg_path = tmp / 'cfg.py'
    cfg.dump(str(cfg_path))
    return str(cfg_path), str(tmp / 'work' / 'epoch_1.pth'), data


def test_inference_segmentor_masks(trained):
    cfg_path, ckpt, data = trained
    model = init_model(cfg_path, ckpt)
    assert is_segmentor(model)
    classes, palette = segmentor_meta(model)
    assert classes == list(CLASSES) and len(palette) == 4
    paths = list_images(os.path.join(data, 'img_dir', 'val'))
    results = inference_segmentor(model, paths, batch_size=3,
                                  return_probs=True)
    assert len(results) == 4
    for path, res in zip(paths, results):
        mask = res['mask']
        assert mask.dtype == np.uint8 and mask.shape == (32, 32)
        assert mask.max() < 4
        probs = res['probs']
        assert probs.shape == (4, 32, 32)
        assert np.allclose(probs.sum(0), 1, atol=1e-4)
        assert np.array_equal(probs.argmax(0), mask)
    # arrays give the same masks as paths
    arrays = [read_image(p) for p in paths]
    from_arrays = inference_segmentor(model, arrays)
    for a, b in zip(results, from_arrays):
        assert np.array_equal(a['mask'], b['mask'])
    single = inference_segmentor(model, paths[0])
    assert len(single) == 1 and np.array_equal(single[0]['mask'],
                                               results[0]['mask'])


def test_inference_model_dispatches_to_segmentor(trained):
    """The task-independent entry returns inference_segmentor's results."""
    cfg_path, ckpt, data = trained
    model = init_model(cfg_path, ckpt)
    paths = list_images(os.path.join(data, 'img_dir', 'val'))
    expected = inference_segmentor(model, paths, return_probs=True)
    results = inference_model(model, paths, batch_size=3, return_probs=True)
    assert len(results) == len(expected) == 4
    for res, ref in zip(results, expected):
        assert set(res) == {'mask', 'ori_shape', 'probs'}
        assert np.array_equal(res['mask'], ref['mask'])
        assert res['ori_shape'] == ref['ori_shape']
        np.testing.assert_allclose(res['probs'], ref['probs'], atol=1e-5)


def test_non_square_masks_are_aligned(trained):
    """A centred letterbox is cropped out before resizing back."""
    cfg_path, ckpt, _ = trained
    model = init_model(cfg_path, ckpt)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)
    mask = inference_segmentor(model, image)[0]['mask']
    assert mask.shape == (20, 40)
    # reference: run the model by hand and crop the known padding
    data = build_test_pipeline(model.cfg, from_array=True)(
        dict(img=image, img_shape=(20, 40), ori_shape=(20, 40)))
    batch = model.data_preprocessor(pseudo_collate([data]), False)
    with torch.no_grad():
        logits = model.inference(batch['inputs'])[0]
    logits = logits[:, 8:24, :]  # 40 -> 32 wide, 16 high, 8 rows on top
    logits = F.interpolate(logits[None], size=(20, 40), mode='bilinear',
                           align_corners=False)[0]
    assert np.array_equal(mask, logits.argmax(0).numpy())


def test_write_seg_outputs(trained, tmp_path):
    cfg_path, ckpt, data = trained
    src = tmp_path / 'images'
    val = os.path.join(data, 'img_dir', 'val')
    names = sorted(os.listdir(val))
    shutil.copytree(val, src / 'sub')
    shutil.copy(os.path.join(val, names[0]), src / 'top.png')
    # a non-square image
    cv2.imwrite(str(src / 'wide.png'),
                cv2.imread(os.path.join(val, names[1]))[:20])
    model = init_model(cfg_path, ckpt)
    classes, palette = segmentor_meta(model)
    paths = list_images(str(src))
    results = inference_segmentor(model, paths)
    out = tmp_path / 'out'
    written = write_seg_outputs(paths, results, str(out), palette, classes,
                                source_root=str(src))
    assert len(written['masks']) == len(written['overlays']) == len(paths)
    assert (out / 'masks' / 'top.png').is_file()
    assert (out / 'masks' / 'sub' / names[0]).is_file()
    assert (out / 'overlays' / 'sub' / names[0]).is_file()
    for path, res, mask_path in zip(paths, results, written['masks']):
        with Image.open(mask_path) as im:
            assert im.mode == 'P'
            assert im.getpalette()[:12] == sum(palette, [])
            back = np.asarray(im)
        assert np.array_equal(back, res['mask'])
        assert back.shape == read_image(path).shape[:2]
    with Image.open(out / 'masks' / 'wide.png') as im:
        assert im.size == (32, 20)
    rows = list(csv.DictReader((out / 'summary.csv').open()))
    assert len(rows) == len(paths)
    for row, res in zip(rows, results):
        fracs = [float(row[f'frac_{c}']) for c in CLASSES]
        assert abs(sum(fracs) - 1) < 1e-4
        expected = np.bincount(res['mask'].ravel(), minlength=4) / \
            res['mask'].size
        assert np.allclose(fracs, expected, atol=1e-6)
    # no overlays, default palette, names relative to the common folder
    out2 = tmp_path / 'out2'
    written = write_seg_outputs(paths[:1], results[:1], str(out2),
                                overlay=False)
    assert written['overlays'] == [] and not (out2 / 'overlays').exists()
    assert os.path.basename(written['masks'][0]) == os.path.basename(
        paths[0])
    with pytest.raises(ValueError, match='paths but'):
        write_seg_outputs(paths, results[:1], str(out2))


def test_save_index_png_many_classes(tmp_path):
    mask = np.array([[0, 300], [2, 1000]], dtype=np.int64)
    path = save_index_png(mask, str(tmp_path / 'm.png'), [[0, 0, 0]])
    assert np.array_equal(np.asarray(Image.open(path)).astype(np.int64),
                          mask)
