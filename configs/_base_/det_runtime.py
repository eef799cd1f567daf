# Runtime for detection: the shared defaults, a checkpoint every 4 epochs
# (last two kept) plus the best by box mAP, and prediction vs ground-truth
# drawings (DetVisHook) instead of the classification plots.
_base_ = ['./default_runtime.py']
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=4, max_keep_ckpts=2,
                    save_best='bbox_mAP', rule='greater'))
custom_hooks = [dict(type='DetVisHook', num_samples=4)]
