# mmdetection's own Mask R-CNN on a DINOv3 ViT-S/16 with the ViTDet simple
# feature pyramid (dinov3_mm SimpleFPN, strides 4-64), trained and evaluated
# with mmdet's COCO dataset, pipeline and metric. Needs the `det` extra
# (mmdet 3.3.0) and mmcv built with ops (RoIAlign, NMS):
#   pip install -e '.[det]'
#   pip uninstall -y mmcv-lite
#   MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0
# (`make test` does the mmcv part once; pip caches the wheel.)
#
# Released weights (official .pth, Hugging Face folder or dinov3_mm file):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Without them (checkpoint=None) the backbone starts from random weights.
#
# Scopes: `_scope_='mmdet'` on the model and on the datasets builds them and
# everything inside them in the mmdet scope, so that what mmdet builds by a
# bare name (its defaults: 'CrossEntropyLoss', 'Resize', ...) is mmdet's and
# not a dinov3_mm class of the same name. Hence our parts carry the
# `dinov3_mm.` prefix. mmdet's own classes carry `mmdet.` as well: the build
# does not need it, but the config check of tools/train.py then checks the
# arguments against the right class. Classes of mmcv (LoadImageFromFile,
# RandomChoiceResize) live in the root registry and stay bare, as do the
# `roi_layer` and `nms` types, which name mmcv.ops functions.
_base_ = ['../_base_/default_runtime.py']

# COCO-format instances: <data_root>/{train,val,test}/*.png and
# <data_root>/annotations/instances_{train,val,test}.json whose file_name is
# relative to the split folder. `classes` must equal the category names.
data_root = 'data/instance_shapes'
classes = ('circle', 'square', 'triangle', 'star')
num_classes = len(classes)
img_scale = (512, 512)
embed_dims = 384
fpn_channels = 256

model = dict(
    _scope_='mmdet',
    type='mmdet.MaskRCNN',
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        # DINOv3 LVD-1689M weights: ImageNet mean/std of RGB in 0-255
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        # a multiple of the patch size (16) and of the coarsest FPN stride
        pad_size_divisor=64),
    backbone=dict(
        type='dinov3_mm.DINOv3ViT',
        arch='small',
        out_type='featmap',
        out_indices=(-1, ),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    neck=dict(
        type='dinov3_mm.SimpleFPN',
        in_channels=embed_dims,
        out_channels=fpn_channels,
        # ViTDet: P2-P5 from the stride-16 map, P6 by pooling
        scales=(4, 2, 1, 0.5, 0.25),
        norm_cfg=dict(type='LN2d')),
    rpn_head=dict(
        type='mmdet.RPNHead',
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        anchor_generator=dict(
            type='mmdet.AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='mmdet.DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=True,
            loss_weight=1.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='mmdet.StandardRoIHead',
        bbox_roi_extractor=dict(
            type='mmdet.SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=fpn_channels,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='mmdet.Shared2FCBBoxHead',
            in_channels=fpn_channels,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=num_classes,
            bbox_coder=dict(
                type='mmdet.DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='mmdet.CrossEntropyLoss', use_sigmoid=False,
                loss_weight=1.0),
            loss_bbox=dict(type='mmdet.L1Loss', loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='mmdet.SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=fpn_channels,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='mmdet.FCNMaskHead',
            num_convs=4,
            in_channels=fpn_channels,
            conv_out_channels=fpn_channels,
            num_classes=num_classes,
            loss_mask=dict(
                type='mmdet.CrossEntropyLoss', use_mask=True,
                loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='mmdet.MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='mmdet.RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='mmdet.MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='mmdet.RandomSampler',
                num=512,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100,
            mask_thr_binary=0.5)))

# mmdet's loading, augmentation and packing (mmdet.structures.DetDataSample)
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
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
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
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
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + '/annotations/instances_test.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)

# ViTDet fine-tuning: AdamW with layer-wise learning-rate decay
max_epochs = 24
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=250),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[16, 22], gamma=0.1),
]
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=4,
                    max_keep_ckpts=2, save_best='coco/bbox_mAP',
                    rule='greater'))
custom_hooks = []
