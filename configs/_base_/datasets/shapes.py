# Generated 3-class shapes dataset (circle / square / triangle) in ImageFolder
# layout: data/shapes/{train,val,test}/<class>/*.png. Create it with
#   python tools/generate_shapes_dataset.py data/shapes
data_root = 'data/shapes'
classes = ('circle', 'square', 'triangle')
img_size = 224

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeKeepRatioPad', size=img_size),
    dict(type='Albumentations', transforms=[
        dict(type='HorizontalFlip', p=0.5),
        dict(type='RandomBrightnessContrast', p=0.3),
    ]),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeKeepRatioPad', size=img_size),
    dict(type='PackClsInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='train',
                 classes=classes, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='val',
                 classes=classes, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='test',
                 classes=classes, pipeline=test_pipeline))
val_evaluator = dict(type='ClsMetric', topk=(1, ))
test_evaluator = val_evaluator
