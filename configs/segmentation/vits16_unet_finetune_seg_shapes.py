# As vits16_unet_frozen_seg_shapes.py, with four evenly spaced blocks
# resampled to strides 4-32 (MultiLevelNeck) and the whole model fine-tuned
# with layer-wise learning-rate decay.
_base_ = ['./vits16_unet_frozen_seg_shapes.py']
model = dict(
    backbone=dict(out_indices=(2, 5, 8, 11), frozen_stages=-1,
                  drop_path_rate=0.1),
    neck=dict(_delete_=True, type='MultiLevelNeck', in_channels=384,
              out_channels=128, scales=(4, 2, 1, 0.5)))
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, backbone_lr_mult=0.1))
