# DINOv3 ViT-S/16 classifier on the official linear-probe features: the class
# token concatenated with the mean patch token (2 x 384 channels).
# Pretrained weights: set `pretrained` (official .pth, Hugging Face directory
# or dinov3_mm checkpoint), e.g. --cfg-options
#   model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
num_classes = 3
model = dict(
    type='DINOv3Classifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', normalization='lvd1689m',
        num_classes=num_classes),
    backbone=dict(
        type='DINOv3ViT', arch='small', out_type='cls_patch_avg',
        out_indices=(-1, ), init_cfg=None),
    head=dict(
        type='LinearClsHead', num_classes=num_classes, in_channels=2 * 384,
        loss=dict(type='CrossEntropyLoss', label_smoothing=0.0)),
)
