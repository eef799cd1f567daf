# Defect segmentation (background / scratch / blob) where defects cover about
# 1 % of the pixels: frozen DINOv3 ViT-S/16, simple feature pyramid, UNet
# decoder and the core pixel-wise focal loss with a low weight on the
# background.
#
# Data: mmseg folders data/defect_seg/{img_dir,ann_dir}/{train,val}/*.png with
# index masks; generate a synthetic set with
#   python projects/industrial/tools/generate_mvtec_like.py data/defect_seg \
#       --layout segmentation
# Released weights: as in configs/industrial/vits16_linear_defect_cls_focal.py
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
_base_ = ['../segmentation/vits16_unet_frozen_seg_shapes.py']
data_root = 'data/defect_seg'
classes = ('background', 'scratch', 'blob')
palette = [[0, 0, 0], [255, 64, 64], [255, 200, 0]]
img_size = 128

model = dict(
    decode_head=dict(num_classes=len(classes)),
    # -alpha_t (1 - p_t)^gamma log p_t per pixel: the many easy background
    # pixels count little, the rare defect pixels a lot
    loss_decode=dict(_delete_=True, type='FocalLoss', gamma=2.0,
                     alpha=[0.25, 1.0, 1.0]))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadSegAnnotation'),
    dict(type='ResizeKeepRatioPad', size=img_size),
    # surfaces have no preferred orientation
    dict(type='Albumentations', transforms=[
        dict(type='HorizontalFlip', p=0.5),
        dict(type='VerticalFlip', p=0.5),
        dict(type='RandomRotate90', p=0.5),
        dict(type='RandomBrightnessContrast', brightness_limit=0.1,
             contrast_limit=0.1, p=0.3),
    ]),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeKeepRatioPad', size=img_size),
    dict(type='LoadSegAnnotation'),
    dict(type='PackSegInputs'),
]
_dataset = dict(type='SegFolderDataset', data_root=data_root, classes=classes,
                palette=palette)
train_dataloader = dict(
    batch_size=8, num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_dataset, img_dir='img_dir/train', ann_dir='ann_dir/train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, img_dir='img_dir/val', ann_dir='ann_dir/val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
# per-class IoU shows how the rare classes do; mIoU alone hides them
val_evaluator = dict(type='SegMetric', iou_metrics=('mIoU', 'mDice'))
test_evaluator = val_evaluator
