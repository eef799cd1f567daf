# Instance segmentation learned from random weights on the generated
# instance shapes on a CPU (the detection counterpart of the demo): a small
# DINOv3 ConvNeXt (He initialisation, as configs/demo/convnext_shapes.py),
# its four stages mapped to 64 channels, a 3-layer DETR decoder of width 128
# with 30 queries (at most 6 objects per image) in 3 groups, and the mask
# head on the stride-4 stage; the decoder also reads the stride-4 level, and
# training adds 3 groups of denoising queries and doubles the class loss
# (each was worth 0.03-0.05 box mAP50 after 7 epochs). 5 epochs over the
# 3000 generated train images: more distinct images, not more passes over
# few, is what this model needs (30 epochs of 600 images overfitted at 0.67
# box mAP50). bf16 autocast (with AMX) makes an epoch about 30 % faster at
# the same accuracy per epoch; a CPU without native bf16 (AVX2 only) trains
# in fp32 instead (AmpOptimWrapper warns). Training keeps the images' own
# 160 px: a batch of mixed sizes is padded, and in padding a randomly
# initialised network (zero biases) gives LayerNorm all-equal channels, whose
# gradient is huge (the first step's gradient norm was 1e13); with released
# weights the multi-scale training of the parent config is fine.
_base_ = ['./vits16_detr_mask_instances.py']
max_epochs = 5
model = dict(
    backbone=dict(_delete_=True, type='DINOv3ConvNeXt',
                  arch=dict(depths=[1, 1, 3, 1], dims=[32, 64, 128, 256]),
                  layer_scale_init_value=0.1, drop_path_rate=0.0,
                  out_type='featmap', out_indices=(0, 1, 2, 3),
                  init_cfg=dict(type='Kaiming', layer=['Conv2d', 'Linear'],
                                mode='fan_in')),
    neck=dict(_delete_=True, type='MultiLevelNeck',
              in_channels=[32, 64, 128, 256], out_channels=64,
              scales=(1, 1, 1, 1)),
    in_channels=64, in_levels=(0, 1, 2, 3), mask_level=0,
    embed_dims=128, num_queries=30, num_groups=3, mask_dims=32,
    num_mask_points=256,
    decoder=dict(num_layers=3, num_heads=4, cross_heads=4, ffn_dims=256),
    loss_weights=dict(cls=2.0),
    denoising=dict(num_groups=3),
    test_cfg=dict(num_select=30))
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadDetAnnotations', with_mask=True),
    dict(type='DetResize', scale=(160, 160), keep_ratio=True),
    dict(type='DetRandomFlip', prob=0.5),
    dict(type='DetPhotometric'),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
optim_wrapper = dict(
    _delete_=True, type='AmpOptimWrapper', dtype='bfloat16',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
