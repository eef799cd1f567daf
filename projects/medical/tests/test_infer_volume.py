"""Volume inference: slicing, batching, stitching, NIfTI output, Dice."""
import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from dinov3_mm_medical.dice import dice_per_class, mean_foreground
from dinov3_mm_medical.inference import (build_volume_pipeline,
                                         collect_inputs, match_ground_truth,
                                         predict_volume,
                                         run_volume_inference)
from dinov3_mm_medical.io import read_nifti, reoriented_shape
from dinov3_mm_medical.slicing import extract_slice
from dinov3_mm_medical.synthetic import MRI_CLASSES

TINY_CONFIG = """
_base_ = [{base!r}]
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=32, num_layers=4,
                            num_heads=2),
                  out_indices=(0, 1, 2, 3), frozen_stages=4),
    neck=dict(in_channels=32, out_channels=16),
    decode_head=dict(in_channels=[16] * 4, channels=(16, 16, 16)))
"""
# trained and tested at 32 px (the always-brain model predicts the same at
# any size; a smaller size only makes the tests fast)
SHRINK = {'test_dataloader.dataset.pipeline.4.size': 32,
          'train_dataloader.dataset.pipeline.5.scale': 32}


@pytest.fixture(scope='module')
def always_brain(tmp_path_factory, repo_root):
    """A tiny config derived from configs/medical/vitb16_unet_mri.py and a
    checkpoint whose classifier predicts class 1 (brain) everywhere."""
    from mmengine.registry import init_default_scope

    from dinov3_mm.registry import MODELS
    folder = tmp_path_factory.mktemp('always_brain')
    config = folder / 'tiny_mri.py'
    config.write_text(TINY_CONFIG.format(
        base=str(repo_root / 'configs/medical/vitb16_unet_mri.py')))
    cfg = Config.fromfile(str(config))
    init_default_scope('dinov3_mm')
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        model.decode_head.conv_seg.weight.zero_()
        model.decode_head.conv_seg.bias.copy_(
            torch.tensor([0.0, 10.0, 0.0, 0.0]))
    checkpoint = folder / 'always_brain.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=MRI_CLASSES))),
               str(checkpoint))
    return config, checkpoint


def test_infer_volume_refuses_a_checkpoint_of_another_model(
        tmp_path, always_brain, write_nifti, lps_affine, run_with_plugin,
        project_root):
    config, checkpoint = always_brain
    state = torch.load(str(checkpoint), weights_only=True)
    state['state_dict']['decode_head.conv_seg.weight'] = torch.zeros(
        7, 16, 1, 1)
    other = tmp_path / 'seven_classes.pth'
    torch.save(state, str(other))
    scan, _ = _hand_case(tmp_path, write_nifti, lps_affine)
    proc = run_with_plugin([
        project_root / 'tools' / 'infer_volume.py', config, other, scan,
        '--out', tmp_path / 'pred'])
    assert proc.returncode == 1
    assert f'error: {other} does not match the model of {config}' \
        in proc.stderr
    assert 'decode_head.conv_seg.weight: checkpoint (7, 16, 1, 1) vs model ' \
        '(4, 16, 1, 1)' in proc.stderr
    assert not (tmp_path / 'pred').exists()


def _hand_case(tmp_path, write_nifti, lps_affine):
    """A 20 x 16 x 6 scan and a ground truth with 8 brain, 3 csf and 5
    ignored voxels."""
    rng = np.random.default_rng(0)
    scan = write_nifti(tmp_path / 'in' / 'scan.nii.gz',
                       (rng.random((20, 16, 6)) * 1000).astype(np.float32),
                       lps_affine(), qform_code=1, sform_code=2)
    gt = np.zeros((20, 16, 6), np.uint8)
    gt[2:4, 2:4, 1:3] = 1
    gt[10, 5:8, 2] = 2
    gt[19, 0:5, 5] = 255
    truth = write_nifti(tmp_path / 'gt' / 'scan.nii.gz', gt, lps_affine())
    return scan, truth


def test_infer_volume_tool_writes_nifti_and_dice(
        tmp_path, always_brain, write_nifti, lps_affine, run_with_plugin,
        project_root):
    import nibabel as nib
    config, checkpoint = always_brain
    scan, truth = _hand_case(tmp_path, write_nifti, lps_affine)
    out = tmp_path / 'pred'
    proc = run_with_plugin([
        project_root / 'tools' / 'infer_volume.py', config, checkpoint, scan,
        '--gt', truth, '--out', out, '--batch-size', '4', '--cfg-options',
        'test_dataloader.dataset.pipeline.4.size=32',
        'train_dataloader.dataset.pipeline.5.scale=32'
    ])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert f'Wrote 1 label volume(s) to {out}' in proc.stdout
    assert 'Dice per class and volume:' in proc.stdout

    source, written = nib.load(str(scan)), nib.load(str(out /
                                                        'scan.nii.gz'))
    assert written.shape == source.shape == (20, 16, 6)
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-6)
    for key in ('pixdim', 'qform_code', 'sform_code', 'xyzt_units',
                'quatern_b', 'quatern_c', 'quatern_d', 'srow_x', 'srow_y',
                'srow_z'):
        np.testing.assert_array_equal(written.header[key],
                                      source.header[key], err_msg=key)
    assert int(written.header['qform_code']) == 1
    assert int(written.header['sform_code']) == 2
    assert written.get_data_dtype() == np.uint8
    labels = np.asarray(written.dataobj)
    assert (labels == 1).all()

    with open(out / 'dice.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]['case'] == 'scan'
    # 1915 labelled voxels (1920 - 5 ignored), all predicted brain:
    # brain 2 * 8 / (1915 + 8); background and csf 0; lesion undefined
    assert float(rows[0]['dice_background']) == 0.0
    assert float(rows[0]['dice_brain']) == pytest.approx(16 / 1923, abs=1e-6)
    assert float(rows[0]['dice_csf']) == 0.0
    assert rows[0]['dice_lesion'] == 'nan'
    assert float(rows[0]['mean_foreground']) == pytest.approx(8 / 1923,
                                                              abs=1e-6)
    assert f'{16 / 1923:.4f}' in proc.stdout


def test_dicom_series_and_folder_inputs(tmp_path, always_brain,
                                        write_ct_series, write_nifti,
                                        lps_affine):
    import nibabel as nib
    config, checkpoint = always_brain
    source = tmp_path / 'inputs'
    stored = np.random.default_rng(1).integers(0, 2000, (6, 5, 4))
    series = write_ct_series(source / 'ct_case', stored.astype(np.int16))
    write_nifti(source / 'mr_case.nii', np.ones((7, 9, 3), np.float32),
                lps_affine())
    assert collect_inputs(str(source / 'ct_case')) == [
        str(source / 'ct_case')]
    result = run_volume_inference(str(config), str(checkpoint), str(source),
                                  str(tmp_path / 'out'), batch_size=3,
                                  cfg_options=SHRINK)
    assert [Path(p).name for p in result['outputs']] == [
        'ct_case.nii.gz', 'mr_case.nii']
    assert result['dice'] == [] and result['dice_csv'] is None
    ct = nib.load(result['outputs'][0])
    assert ct.shape == (6, 5, 4)
    np.testing.assert_allclose(ct.affine, series['affine'], atol=1e-3)
    assert int(ct.header['qform_code']) == 1
    assert int(ct.header['sform_code']) == 1
    assert (np.asarray(ct.dataobj) == 1).all()
    mr = nib.load(result['outputs'][1])
    assert mr.shape == (7, 9, 3) and mr.get_data_dtype() == np.uint8


def test_stitching_follows_axis_orientation_and_batches(
        tmp_path, write_nifti, lps_affine):
    data = np.random.default_rng(2).random((7, 5, 4)).astype(np.float32)
    permuted = np.zeros((4, 4))  # stored axes (S, L, P)
    permuted[2, 0], permuted[0, 1], permuted[1, 2] = 2.5, -0.9, -0.8
    permuted[3, 3] = 1
    volume = read_nifti(str(write_nifti(tmp_path / 'v.nii.gz', data,
                                        permuted)))
    for axis, orientation in ((0, 'RAS'), (2, None), (1, 'LPS')):
        calls = []

        def threshold(batch):
            calls.append([d['slice_index'] for d in batch])
            first = batch[0]
            return [(extract_slice(first['volume'], d['slice_axis'],
                                   d['slice_index']) > 0.5).astype(np.uint8)
                    for d in batch]

        labels = predict_volume(volume, threshold, axis=axis,
                                orientation=orientation, batch_size=3)
        np.testing.assert_array_equal(labels, data > 0.5)
        num = reoriented_shape(data.shape, permuted, orientation)[axis]
        assert calls == [list(range(s, min(s + 3, num)))
                         for s in range(0, num, 3)]
    with pytest.raises(ValueError, match='expected'):
        predict_volume(volume, lambda b: [np.zeros((2, 2))] * len(b))


def test_dice_hand_computed():
    gt = np.array([0, 0, 1, 1, 2, 255])
    pred = np.array([0, 1, 1, 2, 2, 0])
    dice = dice_per_class(pred, gt, num_classes=4, ignore_index=255)
    # class 0: 2*1/(1+2); class 1: 2*1/(2+2); class 2: 2*1/(2+1); 3: absent
    np.testing.assert_allclose(dice[:3], [2 / 3, 0.5, 2 / 3])
    assert np.isnan(dice[3])
    assert mean_foreground(dice) == pytest.approx((0.5 + 2 / 3) / 2)
    with pytest.raises(ValueError, match='outside the 4 classes'):
        dice_per_class(pred, np.array([0, 0, 1, 1, 9, 0]), 4)
    with pytest.raises(ValueError, match='voxels'):
        dice_per_class(pred[:2], gt, 4)


def test_ground_truth_errors(tmp_path, always_brain, write_nifti,
                             lps_affine):
    config, checkpoint = always_brain
    scan, _ = _hand_case(tmp_path, write_nifti, lps_affine)
    wrong = write_nifti(tmp_path / 'wrong' / 'scan.nii.gz',
                        np.zeros((20, 16, 5), np.uint8), lps_affine())
    with pytest.raises(ValueError) as info:
        run_volume_inference(str(config), str(checkpoint), str(scan),
                             str(tmp_path / 'out'), gt=str(wrong),
                             cfg_options=SHRINK)
    assert f'Mask {wrong} has shape (20, 16, 5)' in str(info.value)
    assert f'image {scan} has shape (20, 16, 6)' in str(info.value)
    (tmp_path / 'empty_gt').mkdir()
    with pytest.raises(FileNotFoundError,
                       match=r'No ground truth for .*scan\.nii\.gz in .*'
                       r'empty_gt: expected scan\.nii\.gz'):
        match_ground_truth([str(scan)], str(tmp_path / 'empty_gt'))
    (tmp_path / 'nothing').mkdir()
    with pytest.raises(ValueError, match='No volume in .*nothing: expected'):
        collect_inputs(str(tmp_path / 'nothing'))


def test_pipeline_must_load_volume_slices():
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadImage'), dict(type='PackSegInputs')]))))
    with pytest.raises(ValueError, match='starts with LoadVolumeSlice'):
        build_volume_pipeline(cfg)


def test_documented_pretrained_override_loads_weights(tmp_path, always_brain):
    """The README's --cfg-options for released weights, on the tiny
    variant of the config with an official-layout (flat) checkpoint."""
    import argparse

    from mmengine.config import DictAction
    from mmengine.registry import init_default_scope

    from dinov3_mm.registry import MODELS
    config, _ = always_brain
    cfg = Config.fromfile(str(config))
    init_default_scope('dinov3_mm')
    source = MODELS.build(cfg.model.backbone)
    weights = tmp_path / 'dinov3_tiny.pth'
    torch.save(source.state_dict(), str(weights))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args([
        '--cfg-options', f'model.backbone.init_cfg.checkpoint={weights}'
    ]).cfg_options
    cfg.merge_from_dict(options)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)


def _truncated_copy(source: Path, target: Path) -> Path:
    """``source`` (a .nii.gz) cut after 60 % of its bytes: the header
    reads, the voxels do not."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[:int(len(data) * 0.6)])
    return target


def test_infer_volume_skip_unreadable_and_progress(
        tmp_path, always_brain, write_nifti, lps_affine, run_with_plugin,
        project_root):
    config, checkpoint = always_brain
    scan, _ = _hand_case(tmp_path, write_nifti, lps_affine)
    folder = scan.parent
    (folder / 'empty.nii.gz').write_bytes(b'')
    _truncated_copy(scan, folder / 'truncated.nii.gz')
    out = tmp_path / 'pred'
    tool = [project_root / 'tools' / 'infer_volume.py', config, checkpoint,
            folder, '--out', out, '--batch-size', '4', '--cfg-options',
            *[f'{k}={v}' for k, v in SHRINK.items()]]

    # without the flag: the empty file's header fails before any work
    proc = run_with_plugin(tool)
    assert proc.returncode == 1
    assert f'error: Cannot read NIfTI file {folder / "empty.nii.gz"}' \
        in proc.stderr
    assert 'no volume was written; pass --skip-unreadable' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not out.exists()

    proc = run_with_plugin(tool + ['--skip-unreadable'],
                           env={'DINOV3_MM_PROGRESS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ['scan.nii.gz',
                                                    'skipped.csv']
    with open(out / 'skipped.csv', newline='') as f:
        rows = {Path(r['path']).name: r['reason'] for r in csv.DictReader(f)}
    assert set(rows) == {'empty.nii.gz', 'truncated.nii.gz'}
    assert 'Cannot read the voxels of NIfTI file' in rows['truncated.nii.gz']
    assert f'skipped {folder / "truncated.nii.gz"}: ' in proc.stderr
    assert 'Skipped 2 unreadable volume(s)' in proc.stderr
    # bars: the volumes (2 pass the header check) and 6 slices in 2 batches
    assert re.search(r'volumes: .*\d/2 ', proc.stderr)
    assert re.search(r'scan: slices: .*\d/2 ', proc.stderr)


def test_truncated_volume_keeps_the_volumes_before_it(
        tmp_path, always_brain, write_nifti, lps_affine, capsys,
        monkeypatch):
    from dinov3_mm_medical.inference import UnreadableVolumeError
    monkeypatch.delenv('DINOV3_MM_PROGRESS', raising=False)
    config, checkpoint = always_brain
    scan, truth = _hand_case(tmp_path, write_nifti, lps_affine)
    folder = tmp_path / 'in'
    _truncated_copy(scan, folder / 'z_case.nii.gz')
    (truth.parent / 'z_case.nii.gz').write_bytes(truth.read_bytes())
    with pytest.raises(UnreadableVolumeError) as info:
        run_volume_inference(str(config), str(checkpoint), str(folder),
                             str(tmp_path / 'out'), gt=str(truth.parent),
                             batch_size=4, cfg_options=SHRINK)
    assert info.value.path == str(folder / 'z_case.nii.gz')
    assert info.value.done == [str(tmp_path / 'out' / 'scan.nii.gz')]
    assert (tmp_path / 'out' / 'scan.nii.gz').is_file()
    with open(tmp_path / 'out' / 'dice.csv', newline='') as f:
        assert [r['case'] for r in csv.DictReader(f)] == ['scan']
    assert 'slices' not in capsys.readouterr().err  # no bar off a terminal


def _size_model(train_scale, test_size, saved_scale=None):
    """A stand-in for an init_model result: the recipe's pipelines with
    the given sizes, and a checkpoint config trained at ``saved_scale``."""
    from types import SimpleNamespace
    base = Path(__file__).resolve().parents[3] / \
        'configs/medical/vitb16_unet_mri.py'
    cfg = Config.fromfile(str(base))
    cfg.train_dataloader.dataset.pipeline[5].scale = train_scale
    cfg.test_dataloader.dataset.pipeline[4].size = test_size
    meta = {}
    if saved_scale is not None:
        saved = Config.fromfile(str(base))
        saved.train_dataloader.dataset.pipeline[5].scale = saved_scale
        meta['cfg'] = saved.pretty_text
    return SimpleNamespace(cfg=cfg, checkpoint_meta=meta)


def test_inference_runs_at_the_training_size():
    from dinov3_mm_medical.resolution import (match_training_size,
                                              pipeline_size)
    # the recipe trains and tests at 256: nothing to change
    model = _size_model(256, 256)
    assert pipeline_size(model.cfg.train_dataloader.dataset.pipeline) == (
        256, 256)
    assert match_training_size(model) is None

    # trained at 64 (the checkpoint's saved config), test config at 256
    model = _size_model(256, 256, saved_scale=64)
    note = match_training_size(model)
    assert note.startswith('note: the test pipeline resizes slices to '
                           '256x256 but the model was trained at 64x64 '
                           "(the checkpoint's training config); inferring "
                           'at 64x64')
    assert model.cfg.test_dataloader.dataset.pipeline[4].size == 64

    # without a saved config the given config's train pipeline counts
    model = _size_model(128, 32)
    assert 'trained at 128x128 (the config\'s train pipeline)' in \
        match_training_size(model)
    assert model.cfg.test_dataloader.dataset.pipeline[4].size == 128

    # --keep-test-size: only a warning naming both sizes
    model = _size_model(256, 256, saved_scale=64)
    warning = match_training_size(model, keep_test_size=True)
    assert warning.startswith('warning: the test pipeline resizes slices to '
                              '256x256 but the model was trained at 64x64')
    assert model.cfg.test_dataloader.dataset.pipeline[4].size == 256
