# DINOv3 ViT-S/16 instance segmentation: the detector of
# vits16_detr_instances.py with a stride-4 pyramid level and a mask head (one
# mask per query from query and pixel embeddings), trained on the instance
# shapes with their masks (decoded, following every geometric transform) and
# evaluated on boxes and masks. Fill the pretrained slot:
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
_base_ = ['./vits16_detr_instances.py']
model = dict(
    neck=dict(scales=(4, 2, 1, 0.5)),
    in_levels=(1, 2, 3),
    with_mask=True,
    mask_level=0)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadDetAnnotations', with_mask=True),
    dict(type='DetResize', scales=[(128, 128), (160, 160), (192, 192)],
         keep_ratio=True),
    dict(type='DetRandomFlip', prob=0.5),
    dict(type='DetPhotometric'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadDetAnnotations', with_mask=True),
    dict(type='DetLetterbox', size=(160, 160)),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    dataset=dict(with_mask=True, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(with_mask=True, pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(with_mask=True, pipeline=test_pipeline))
val_evaluator = dict(type='CocoMetric', metric=('bbox', 'segm'))
test_evaluator = val_evaluator
