# DINOv3 ViT-S/16 real-time DETR skeleton (DINOv3DETR): the stride-16 map of
# the last block, a simple feature pyramid (strides 8, 16, 32), a two-stage
# deformable decoder of 3 layers with 100 queries and 4 query groups in
# training (Group DETR).
# Released weights (official .pth, Hugging Face folder or dinov3_mm file):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Without them (checkpoint=None) the backbone starts from random weights.
num_classes = 4
model = dict(
    type='DINOv3DETR',
    num_classes=num_classes,
    data_preprocessor=dict(normalization='lvd1689m', pad_size_divisor=32),
    backbone=dict(
        type='DINOv3ViT', arch='small', out_type='featmap',
        out_indices=(-1, ), drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    neck=dict(type='SimpleFPN', in_channels=384, out_channels=256,
              scales=(2, 1, 0.5)),
    in_channels=256,
    in_levels=(0, 1, 2),
    embed_dims=256,
    num_queries=100,
    num_groups=4,
    decoder=dict(num_layers=3, ffn_dims=1024, num_points=4),
    test_cfg=dict(num_select=100))
