# DINOv3 ConvNeXt-T detector: stages 2-4 (strides 8, 16, 32) mapped to 256
# channels (MultiLevelNeck with unit scales), the same DETR decoder as the
# ViT-S/16 recipe. Fill the pretrained slot:
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_convnext_tiny.pth
_base_ = ['./vits16_detr_instances.py']
model = dict(
    backbone=dict(_delete_=True, type='DINOv3ConvNeXt', arch='tiny',
                  out_type='featmap', out_indices=(1, 2, 3),
                  drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint=None)),
    neck=dict(_delete_=True, type='MultiLevelNeck',
              in_channels=[192, 384, 768], out_channels=256,
              scales=(1, 1, 1)))
