# Linear probe: frozen DINOv3 ViT-S/16, features extracted once (bf16 autocast)
# and a linear head trained on them for 50 epochs.
_base_ = [
    '../_base_/models/vits16_cls.py', '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py'
]
model = dict(backbone=dict(frozen_stages=12))

train_cfg = dict(type='CachedFeatureTrainLoop', max_epochs=50, val_interval=5,
                 num_views=1, autocast_dtype='bfloat16')
val_cfg = dict(type='CachedFeatureValLoop', autocast_dtype='bfloat16')
test_cfg = dict()

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=5, end=50,
         eta_min=1e-5, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=10))
