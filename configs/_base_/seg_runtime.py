# Runtime for segmentation: the shared defaults, a checkpoint every 5 epochs
# (last two kept) plus the best by mIoU, and prediction vs ground truth
# overlays (SegVisHook) instead of the classification plots.
_base_ = ['./default_runtime.py']
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='mIoU', rule='greater'))
custom_hooks = [dict(type='SegVisHook', num_samples=4)]
