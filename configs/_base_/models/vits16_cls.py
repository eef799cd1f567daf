# DINOv3 ViT-S/16 classifier on the official linear-probe features: the class
# token concatenated with the mean patch token (2 x 384 channels).
# Released weights (official .pth, Hugging Face folder or dinov3_mm file):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Without them (checkpoint=None) the backbone starts from random weights.
num_classes = 3
model = dict(
    type='DINOv3Classifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', normalization='lvd1689m',
        num_classes=num_classes),
    backbone=dict(
        type='DINOv3ViT', arch='small', out_type='cls_patch_avg',
        out_indices=(-1, ),
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    head=dict(
        type='LinearClsHead', num_classes=num_classes, in_channels=2 * 384,
        loss=dict(type='CrossEntropyLoss', label_smoothing=0.0)),
)
