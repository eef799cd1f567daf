# Full fine-tuning of DINOv3 ViT-S/16 with layer-wise lr decay, a 10x lower
# backbone lr, warmup + cosine, gradient clipping and accumulation, mixup /
# cutmix, label smoothing, EMA of the weights and early stopping.
_base_ = [
    '../_base_/models/vits16_cls.py', '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(batch_augments=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ])),
    backbone=dict(drop_path_rate=0.1, with_cp=False),
    head=dict(loss=dict(label_smoothing=0.1)))

train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs=20, val_interval=1)
val_cfg = dict()
test_cfg = dict()

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05,
                   betas=(0.9, 0.999)),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, backbone_lr_mult=0.1),
    clip_grad=dict(max_norm=3.0),
    accumulative_counts=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=20,
         eta_min=1e-6, convert_to_iter_based=True),
]
custom_hooks = [
    dict(type='ClsPlotHook'),
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
    dict(type='EarlyStoppingHook', monitor='accuracy/top1', patience=5,
         rule='greater'),
]
