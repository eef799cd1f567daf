# vits16_unet_multispectral.py with ViT-L/16, the size DINOv3's satellite
# (SAT-493M) weights are released in; their RGB statistics are the
# 'sat493m' preset of NormalizeBands used by the base config:
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vitl16_sat493m.pth
_base_ = ['./vits16_unet_multispectral.py']
model = dict(
    backbone=dict(arch='large'),
    neck=dict(in_channels=1024))
