# DINOv3 ViT + ViTDet simple feature pyramid + UNet decoder, CE + Dice loss.
# With released weights set model.backbone.arch='small' and an init_cfg.
_base_ = ['../_base_/datasets/seg_shapes.py', '../_base_/default_runtime.py']

num_classes = 4
embed_dims = 96
model = dict(
    type='DINOv3Segmentor',
    data_preprocessor=dict(normalization='lvd1689m'),
    backbone=dict(
        type='DINOv3ViT',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=3),
        out_type='featmap', out_indices=(-1, )),
    neck=dict(type='SimpleFPN', in_channels=embed_dims, out_channels=64,
              scales=(4, 2, 1, 0.5)),
    decode_head=dict(type='UNetHead', in_channels=[64, 64, 64, 64],
                     channels=(64, 64, 32), num_classes=num_classes,
                     dropout_ratio=0.0),
    loss_decode=dict(type='CEDiceLoss', ce_weight=1.0, dice_weight=1.0),
    test_cfg=dict(mode='whole'))

train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs=30, val_interval=10)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30,
         eta_min=1e-5, convert_to_iter_based=True),
]
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=10, save_best='mIoU',
                    rule='greater'))
custom_hooks = []
