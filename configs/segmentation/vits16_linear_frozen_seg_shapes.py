# Official DINOv3 linear segmentation evaluation: frozen ViT-S/16, BatchNorm +
# 1x1 conv on the concatenated patch features of the last four blocks.
_base_ = [
    '../_base_/models/vits16_seg.py', '../_base_/datasets/seg_shapes.py',
    '../_base_/schedules/seg_40e.py', '../_base_/seg_runtime.py'
]
model = dict(
    backbone=dict(out_indices=(8, 9, 10, 11), frozen_stages=12),
    decode_head=dict(type='LinearSegHead', in_channels=[384] * 4,
                     in_index=[0, 1, 2, 3], num_classes=4, dropout_ratio=0.1),
    loss_decode=dict(_delete_=True, type='SegCrossEntropyLoss',
                     ignore_index=255))
