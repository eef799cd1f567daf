default_scope = 'dinov3_mm'

default_hooks = dict(
    # lr of every parameter group, labelled (lr/backbone.layer_0, lr/head)
    runtime_info=dict(type='GroupLrRuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    # logs the first iteration, then every min(interval, epoch length)
    logger=dict(type='EpochAwareLoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2,
        save_best='accuracy/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [dict(type='ClsPlotHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# TensorBoard by default; add dict(type='MLflowVisBackend') or
# dict(type='WandbVisBackend') to log there too.
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(type='GroupLrLogProcessor', by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
