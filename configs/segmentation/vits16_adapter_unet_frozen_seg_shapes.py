# Official DINOv3 dense recipe, with a UNet decoder: frozen ViT-S/16, the
# DINOv3 ViT-Adapter (convolutional spatial prior + deformable-attention
# extractors over four evenly spaced blocks) giving a stride 4-32 pyramid.
_base_ = [
    '../_base_/models/vits16_seg.py', '../_base_/datasets/seg_shapes_aug.py',
    '../_base_/schedules/seg_40e.py', '../_base_/seg_runtime.py'
]
model = dict(
    backbone=dict(out_indices=(2, 5, 8, 11), frozen_stages=12),
    neck=dict(type='DINOv3Adapter', in_channels=384, embed_dims=192,
              num_heads=6, drop_path_rate=0.1),
    decode_head=dict(type='UNetHead', in_channels=[192] * 4,
                     channels=(128, 64, 64), num_classes=4,
                     dropout_ratio=0.1))
