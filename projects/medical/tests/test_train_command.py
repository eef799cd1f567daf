"""The README workflow: generate volumes and train
configs/medical/vitb16_unet_mri.py with tools/train.py (subprocesses, the
plugin found through its entry point), then segment a volume with the
trained checkpoint."""
import csv

import numpy as np
import torch

from dinov3_mm_medical.inference import run_volume_inference
from dinov3_mm_medical.io import reorient
from dinov3_mm_medical.synthetic import MRI_CLASSES

CONFIG = 'configs/medical/vitb16_unet_mri.py'
# The documented data-root override, and the only other overrides: one
# epoch and 64-px slices so ViT-B trains in seconds on a CPU.
DATA_ROOT = [f'{split}_dataloader.dataset.data_root=mri'
             for split in ('train', 'val', 'test')]
SHRINK = [
    'train_cfg.max_epochs=1',
    'train_dataloader.dataset.pipeline.5.scale=64',
    'train_dataloader.dataset.pipeline.6.crop_size=64',
    'val_dataloader.dataset.pipeline.4.size=64',
]


def test_generate_train_and_infer(tmp_path, repo_root, project_root,
                                  run_with_plugin):
    import nibabel as nib
    gen = run_with_plugin([
        project_root / 'tools' / 'generate_mri_volumes.py', '--out', 'mri',
        '--num-train', '2', '--num-val', '1', '--shape', '48', '48', '12'
    ])
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert 'Wrote 2 training and 1 validation volumes to mri' in gen.stdout
    assert sorted(p.name for p in (tmp_path / 'mri/images/train').iterdir()
                  ) == ['case_000.nii.gz', 'case_001.nii.gz']

    proc = run_with_plugin([
        repo_root / 'tools' / 'train.py', repo_root / CONFIG,
        '--cfg-options', *DATA_ROOT, *SHRINK
    ])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert ('2 volumes, 24 slices along axis 2: 14 with foreground (all '
            'kept), 10 empty of which 2 kept') in log
    assert 'Epoch(train) [1][2/2]' in log and 'loss_seg' in log
    assert 'Epoch(val) [1][2/2]' in log and 'mDice' in log
    work = tmp_path / 'work_dirs' / 'vitb16_unet_mri'
    checkpoint = work / 'epoch_1.pth'
    assert checkpoint.is_file()
    ckpt = torch.load(str(checkpoint), map_location='cpu',
                      weights_only=True, mmap=True)
    assert tuple(ckpt['meta']['dataset_meta']['classes']) == MRI_CLASSES
    assert ckpt['state_dict']['backbone.blocks.11.mlp.fc2.weight'].shape == (
        768, 3072)  # ViT-B/16
    # the validation pictures show slices with foreground in the ground
    # truth (validation keeps all 12 slices, the empty edge ones included)
    panels = sorted(p.stem for p in (work / 'vis' / 'val' /
                                     'epoch_1').iterdir())
    assert len(panels) == 4 and 'VolumeSliceVisHook: saved 4 val' in log
    truth_image = nib.load(str(tmp_path / 'mri/labels/val/case_002.nii.gz'))
    truth_ras, _ = reorient(np.asarray(truth_image.dataobj),
                            truth_image.affine, 'RAS')
    for name in panels:
        case, index = name.rsplit('_k', 1)
        assert case == 'case_002'
        assert (truth_ras[:, :, int(index)] > 0).any(), name

    # the trained checkpoint segments a whole volume (the tool itself is
    # run in test_infer_volume.py; in-process here to save a ViT-B start)
    scan = tmp_path / 'mri/images/val/case_002.nii.gz'
    result = run_volume_inference(
        str(repo_root / CONFIG), str(checkpoint), str(scan),
        str(tmp_path / 'pred'), gt=str(tmp_path / 'mri/labels/val'),
        batch_size=5,
        cfg_options={'test_dataloader.dataset.pipeline.4.size': 64})
    assert result['classes'] == list(MRI_CLASSES)
    written = nib.load(str(tmp_path / 'pred' / 'case_002.nii.gz'))
    source = nib.load(str(scan))
    assert written.shape == source.shape == (48, 48, 12)
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-6)
    labels = np.asarray(written.dataobj)
    assert labels.dtype == np.uint8 and labels.max() < 4
    with open(tmp_path / 'pred' / 'dice.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['case'] for r in rows] == ['case_002']
    truth = np.asarray(nib.load(
        str(tmp_path / 'mri/labels/val/case_002.nii.gz')).dataobj)
    inter = np.logical_and(labels == 1, truth == 1).sum()
    expected = 2 * inter / ((labels == 1).sum() + (truth == 1).sum())
    assert float(rows[0]['dice_brain']) == np.round(expected, 6)

    # the recipe's test size (256) differs from the training size (64, in
    # the checkpoint's config): inference runs at 64, labels as above
    again = run_volume_inference(
        str(repo_root / CONFIG), str(checkpoint), str(scan),
        str(tmp_path / 'pred_default'), batch_size=5, log=lambda line: None)
    assert again['size_note'].startswith(
        'note: the test pipeline resizes slices to 256x256 but the model '
        "was trained at 64x64 (the checkpoint's training config)")
    np.testing.assert_array_equal(
        np.asarray(nib.load(again['outputs'][0]).dataobj), labels)
