# DINOv3 ViT-S/16 segmentor skeleton; each recipe adds its neck and head.
# Released weights (official .pth, Hugging Face folder or dinov3_mm file):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Without them (checkpoint=None) the backbone starts from random weights.
num_classes = 4
embed_dims = 384
model = dict(
    type='DINOv3Segmentor',
    data_preprocessor=dict(normalization='lvd1689m'),
    backbone=dict(
        type='DINOv3ViT', arch='small', out_type='featmap',
        out_indices=(-1, ),
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    loss_decode=dict(type='CEDiceLoss', ce_weight=1.0, dice_weight=1.0),
    test_cfg=dict(mode='whole'))
