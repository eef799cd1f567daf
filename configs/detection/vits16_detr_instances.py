# DINOv3 ViT-S/16 detector (boxes only) fine-tuned on the generated instance
# dataset (tools/generate_shapes_dataset.py --instances data/instances) with
# layer-wise learning-rate decay. Fill the pretrained slot:
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
_base_ = [
    '../_base_/models/vits16_detr.py', '../_base_/datasets/instances.py',
    '../_base_/det_runtime.py', '../_base_/schedules/det_24e.py'
]
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.8, backbone_lr_mult=0.1))
