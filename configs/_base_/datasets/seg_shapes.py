# Generated segmentation shapes (background, circle, square, triangle) in
# mmseg folders: data/seg_shapes/{img_dir,ann_dir}/{train,val}/*.png.
data_root = 'data/seg_shapes'
classes = ('background', 'circle', 'square', 'triangle')
palette = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0]]
img_size = 64

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadSegAnnotation'),
    dict(type='ResizeKeepRatioPad', size=img_size),
    dict(type='Albumentations', transforms=[
        dict(type='HorizontalFlip', p=0.5),
        dict(type='RandomBrightnessContrast', p=0.3),
    ]),
    dict(type='PackSegInputs'),
]
# Masks are loaded after resizing so that they keep the original size, at
# which the segmentor returns its predictions.
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
val_evaluator = dict(type='SegMetric', iou_metrics=('mIoU', 'mDice'))
test_evaluator = val_evaluator
