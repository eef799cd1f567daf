# As vits16_adapter_unet_frozen_seg_shapes.py, with the ViT fine-tuned too
# (layer-wise learning-rate decay 0.75, backbone x0.1).
_base_ = ['./vits16_adapter_unet_frozen_seg_shapes.py']
model = dict(backbone=dict(frozen_stages=-1, drop_path_rate=0.1))
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, backbone_lr_mult=0.1))
