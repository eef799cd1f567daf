# AdamW (lr 2e-4, backbone at 0.1x), 1-epoch linear warm-up then cosine decay
# over 24 epochs; gradient clipping at 0.1 as DETRs do; validation every 4.
max_epochs = 24
train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=4)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
                     clip_grad=dict(max_norm=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-6, convert_to_iter_based=True),
]
