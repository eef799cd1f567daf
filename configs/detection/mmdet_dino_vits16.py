# mmdetection's own DINO (DETR with improved denoising anchor boxes) on a
# DINOv3 ViT-S/16: the stride-16 patch map becomes four levels at strides
# 8, 16, 32 and 64 through the ViTDet simple feature pyramid (dinov3_mm
# SimpleFPN), which feed mmdet's deformable encoder and decoder. Trained and
# evaluated with mmdet's COCO dataset, pipeline and metric. Needs the `det`
# extra (mmdet 3.3.0) and mmcv built with ops:
#   pip install -e '.[det]'
#   pip uninstall -y mmcv-lite
#   MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0
# This is also the reference for the speed comparison with dinov3_mm's own
# DINOv3DETR (same backbone, same input size).
#
# Released weights (official .pth, Hugging Face folder or dinov3_mm file):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Without them (checkpoint=None) the backbone starts from random weights.
#
# Scopes: see mmdet_maskrcnn_vits16_simplefpn.py (`_scope_='mmdet'` on the
# model and the datasets, `dinov3_mm.` on our parts, `mmdet.` on mmdet's).
_base_ = ['../_base_/default_runtime.py']

# COCO-format boxes: <data_root>/{train,val,test}/*.png and
# <data_root>/annotations/instances_{train,val,test}.json whose file_name is
# relative to the split folder. `classes` must equal the category names.
data_root = 'data/instance_shapes'
classes = ('circle', 'square', 'triangle', 'star')
num_classes = len(classes)
img_scale = (512, 512)
embed_dims = 384
# width of the pyramid, the encoder and the decoder; mmdet's DINO decoder
# encodes reference points with 128 features per coordinate, so keep 256
dims = 256
num_levels = 4

model = dict(
    _scope_='mmdet',
    type='mmdet.DINO',
    num_queries=300,
    with_box_refine=True,
    as_two_stage=True,
    num_feature_levels=num_levels,
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        # DINOv3 LVD-1689M weights: ImageNet mean/std of RGB in 0-255
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # a multiple of the patch size (16) and of the coarsest level (64)
        pad_size_divisor=64),
    backbone=dict(
        type='dinov3_mm.DINOv3ViT',
        arch='small',
        out_type='featmap',
        out_indices=(-1, ),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    # Several blocks instead (e.g. out_indices=(3, 7, 11) with
    # MultiLevelNeck) work as well; the ViTDet pyramid of the last block is
    # the simplest multi-scale input.
    neck=dict(
        type='dinov3_mm.SimpleFPN',
        in_channels=embed_dims,
        out_channels=dims,
        scales=(2, 1, 0.5, 0.25),
        norm_cfg=dict(type='GN', num_groups=32)),
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_levels=num_levels,
                               dropout=0.0),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=1024,
                         ffn_drop=0.0))),
    decoder=dict(
        num_layers=6,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=dims, num_heads=8, dropout=0.0),
            cross_attn_cfg=dict(embed_dims=dims, num_levels=num_levels,
                                dropout=0.0),
            ffn_cfg=dict(embed_dims=dims, feedforward_channels=1024,
                         ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(
        num_feats=dims // 2, normalize=True, offset=0.0, temperature=20),
    bbox_head=dict(
        type='mmdet.DINOHead',
        num_classes=num_classes,
        embed_dims=dims,
        sync_cls_avg_factor=True,
        loss_cls=dict(
            type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=5.0),
        loss_iou=dict(type='mmdet.GIoULoss', loss_weight=2.0)),
    dn_cfg=dict(
        label_noise_scale=0.5,
        box_noise_scale=1.0,
        group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=100)),
    train_cfg=dict(
        assigner=dict(
            type='mmdet.HungarianAssigner',
            match_costs=[
                dict(type='mmdet.FocalLossCost', weight=2.0),
                dict(type='mmdet.BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=100))

# mmdet's loading, augmentation and packing (mmdet.structures.DetDataSample)
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize', resize_type='mmdet.Resize',
         scales=[(384, 384), (448, 448), (512, 512), (576, 576)],
         keep_ratio=True),
    dict(type='mmdet.PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
_dataset = dict(
    _scope_='mmdet',
    type='mmdet.CocoDataset',
    data_root=data_root,
    metainfo=dict(classes=classes),
    backend_args=backend_args)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='mmdet.AspectRatioBatchSampler'),
    dataset=dict(
        **_dataset,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        # images without objects are valid negatives for a DETR
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **_dataset,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **_dataset,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='test/'),
        test_mode=True,
        pipeline=test_pipeline))
val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + '/annotations/instances_val.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
test_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + '/annotations/instances_test.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)

# mmdet's DINO schedule: AdamW, backbone at a tenth of the learning rate
max_epochs = 24
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[20], gamma=0.1),
]
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=4,
                    max_keep_ckpts=2, save_best='coco/bbox_mAP',
                    rule='greater'))
custom_hooks = []
