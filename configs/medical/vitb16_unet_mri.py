# MRI segmentation: frozen DINOv3 ViT-B/16, four evenly spaced blocks
# resampled to strides 4-32 (MultiLevelNeck), UNet decoder, CE + Dice loss
# (ignore index 255), on 2D slices of NIfTI / DICOM volumes with percentile
# normalisation and the fixed gamma 0.75. Needs the medical plugin:
#   pip install -e projects/medical
#   python projects/medical/tools/generate_mri_volumes.py \
#       --out data/mri_volumes
#   python tools/train.py configs/medical/vitb16_unet_mri.py --cfg-options \
#       train_dataloader.dataset.data_root=data/mri_volumes \
#       val_dataloader.dataset.data_root=data/mri_volumes \
#       test_dataloader.dataset.data_root=data/mri_volumes
# (data/mri_volumes is also the default, so the overrides only matter for
# another folder.)
# Released weights (official .pth, Hugging Face folder or dinov3_mm file):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vitb16.pth
# Without them the backbone starts from random weights (and, frozen, learns
# nothing: only the neck and the decoder train).
# Whole volumes -> NIfTI label maps (+ Dice with --gt):
#   python projects/medical/tools/infer_volume.py CONFIG CHECKPOINT INPUT
# The core segmentor skeleton (vits16_seg.py: DINOv3Segmentor, lvd1689m
# normalisation, CE + Dice) with its backbone switched to ViT-B/16.
_base_ = [
    '../_base_/models/vits16_seg.py', './_base_/mri_volumes.py',
    '../_base_/schedules/seg_40e.py', '../_base_/seg_runtime.py'
]
num_classes = 4
embed_dims = 768
model = dict(
    backbone=dict(arch='base', out_indices=(2, 5, 8, 11), frozen_stages=12),
    neck=dict(type='MultiLevelNeck', in_channels=embed_dims,
              out_channels=128, scales=(4, 2, 1, 0.5)),
    decode_head=dict(type='UNetHead', in_channels=[128] * 4,
                     channels=(128, 64, 64), num_classes=num_classes,
                     dropout_ratio=0.1),
    loss_decode=dict(type='CEDiceLoss', ce_weight=1.0, dice_weight=1.0,
                     ignore_index=255))
# Validation pictures of the slices with the most foreground (ground truth or
# prediction), spread over the cases, instead of the first (empty edge) slices.
custom_hooks = [dict(type='VolumeSliceVisHook', num_samples=4)]
