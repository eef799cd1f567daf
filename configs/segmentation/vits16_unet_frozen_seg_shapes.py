# Frozen ViT-S/16, ViTDet simple feature pyramid from the last block, UNet
# decoder; CE + Dice loss.
_base_ = [
    '../_base_/models/vits16_seg.py', '../_base_/datasets/seg_shapes_aug.py',
    '../_base_/schedules/seg_40e.py', '../_base_/seg_runtime.py'
]
model = dict(
    backbone=dict(out_indices=(-1, ), frozen_stages=12),
    neck=dict(type='SimpleFPN', in_channels=384, out_channels=128,
              scales=(4, 2, 1, 0.5)),
    decode_head=dict(type='UNetHead', in_channels=[128] * 4,
                     channels=(128, 64, 64), num_classes=4,
                     dropout_ratio=0.1))
