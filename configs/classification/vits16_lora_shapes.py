# LoRA: low-rank adapters on the attention and MLP linears of DINOv3
# ViT-S/16; only the adapters and the head train. Merge them into the weights
# afterwards with tools/merge_lora.py.
_base_ = [
    '../_base_/models/vits16_cls.py', '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py'
]
model = dict(lora=dict(r=8, alpha=16, dropout=0.05,
                       target_modules=('qkv', 'proj', 'fc1', 'fc2')))

train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs=10, val_interval=1)
val_cfg = dict()
test_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3,
                                    weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=10,
         eta_min=1e-5, convert_to_iter_based=True),
]
