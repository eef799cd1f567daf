"""VolumeSliceVisHook draws the slices with content, not the first ones."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement, PixelData

from dinov3_mm_medical.synthetic import MRI_CLASSES
from dinov3_mm_medical.vis_hook import VolumeSliceVisHook, foreground_fraction

SIZE = 16


def _slice(case, index, gt_box=None, pred_box=None, texture=0.0):
    """A data sample and its input for slice ``index`` of ``case``; the
    boxes ``(y0, y1, x0, x1)`` are labelled 2 (csf)."""
    gt = np.zeros((SIZE, SIZE), np.int64)
    pred = np.zeros((SIZE, SIZE), np.int64)
    if gt_box:
        gt[gt_box[0]:gt_box[1], gt_box[2]:gt_box[3]] = 2
    if pred_box:
        pred[pred_box[0]:pred_box[1], pred_box[2]:pred_box[3]] = 2
    gt[0, :] = 255  # padding-like ignored row
    sample = BaseDataElement(metainfo=dict(
        case=case, slice_index=index, slice_id=f'{case}_k{index:03d}',
        ori_shape=(SIZE, SIZE), img_shape=(SIZE, SIZE),
        pad_border=(0, 0, 0, 0)))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt)[None])
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred)[None])
    sample.seg_logits = PixelData(data=torch.zeros(4, SIZE, SIZE))
    rng = np.random.default_rng(index)
    image = 100 + texture * rng.standard_normal((3, SIZE, SIZE))
    return sample, torch.from_numpy(np.clip(image, 0, 255).astype(np.uint8))


def _runner(tmp_path):
    dataset = SimpleNamespace(metainfo=dict(
        classes=MRI_CLASSES, palette=[[0, 0, 0], [70, 130, 180],
                                      [255, 215, 0], [220, 20, 60]]))
    return SimpleNamespace(
        work_dir=str(tmp_path), epoch=1, iter=8, model=SimpleNamespace(),
        _val_loop=SimpleNamespace(dataloader=SimpleNamespace(
            dataset=dataset)),
        _test_loop=SimpleNamespace(dataloader=SimpleNamespace(
            dataset=dataset)))


def _run_val(hook, runner, slices, batch_size=4):
    hook.before_val_epoch(runner)
    for start in range(0, len(slices), batch_size):
        batch = slices[start:start + batch_size]
        hook.after_val_iter(runner, start // batch_size,
                            dict(inputs=[s[1] for s in batch]),
                            [s[0] for s in batch])
    hook.after_val_epoch(runner, {})


def test_foreground_fraction():
    labels = np.array([[0, 1, 255], [2, 0, 0]])
    assert foreground_fraction(labels) == pytest.approx(2 / 5)
    assert foreground_fraction(labels, background=(0, 1)) == \
        pytest.approx(1 / 5)
    assert foreground_fraction(np.full((2, 2), 255)) == 0.0
    assert foreground_fraction(None) == 0.0


def test_chosen_slices_have_foreground(tmp_path):
    # two cases of 6 slices: empty edge slices first, content in the middle
    # (in the ground truth, or only in the prediction for case b)
    slices = ([_slice('a', k) for k in range(2)] +
              [_slice('a', 2, gt_box=(4, 8, 4, 8)),
               _slice('a', 3, gt_box=(2, 12, 2, 12)),
               _slice('a', 4, gt_box=(6, 7, 6, 7))] +
              [_slice('a', 5)] +
              [_slice('b', k) for k in range(4)] +
              [_slice('b', 4, pred_box=(3, 9, 3, 9)), _slice('b', 5)])
    hook = VolumeSliceVisHook(num_samples=3)
    runner = _runner(tmp_path)
    _run_val(hook, runner, slices)
    folder = tmp_path / 'vis' / 'val' / 'epoch_1'
    # at most 2 per case: a's two largest, then b's only one with content
    assert sorted(p.name for p in folder.iterdir()) == [
        'a_k002.png', 'a_k003.png', 'b_k004.png']
    drawn = {s[0].slice_id: s[0] for s in slices}
    for name in ('a_k002', 'a_k003', 'b_k004'):
        sample = drawn[name]
        assert (foreground_fraction(sample.gt_sem_seg.data.numpy()[0]) +
                foreground_fraction(sample.pred_sem_seg.data.numpy()[0])) > 0


def test_without_foreground_the_most_varied_slices_win(tmp_path):
    slices = [_slice('c', k, texture=float(t))
              for k, t in enumerate((0, 0, 30, 5, 60, 0))]
    hook = VolumeSliceVisHook(num_samples=2, max_per_case=2)
    _run_val(hook, _runner(tmp_path), slices, batch_size=2)
    folder = tmp_path / 'vis' / 'val' / 'epoch_1'
    assert sorted(p.name for p in folder.iterdir()) == ['c_k002.png',
                                                        'c_k004.png']


def test_medical_recipe_uses_the_hook(repo_root):
    from mmengine.config import Config
    cfg = Config.fromfile(
        str(repo_root / 'configs/medical/vitb16_unet_mri.py'))
    assert [h['type'] for h in cfg.custom_hooks] == ['VolumeSliceVisHook']
    with pytest.raises(ValueError, match='max_per_case'):
        VolumeSliceVisHook(max_per_case=0)
