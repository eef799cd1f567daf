# AdamW, 2-epoch linear warm-up then cosine decay over 40 epochs; validation
# every 5 epochs.
max_epochs = 40
train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=max_epochs,
         eta_min=1e-6, convert_to_iter_based=True),
]
