# DPT decoder on four evenly spaced ViT-S/16 blocks, whole model fine-tuned
# with layer-wise learning-rate decay (0.75 per block, backbone x0.1).
_base_ = [
    '../_base_/models/vits16_seg.py', '../_base_/datasets/seg_shapes_aug.py',
    '../_base_/schedules/seg_40e.py', '../_base_/seg_runtime.py'
]
model = dict(
    backbone=dict(out_indices=(2, 5, 8, 11), drop_path_rate=0.1),
    decode_head=dict(type='DPTHead', in_channels=[384] * 4, channels=128,
                     post_process_channels=(48, 96, 192, 384), num_classes=4,
                     dropout_ratio=0.1))
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, backbone_lr_mult=0.1))
