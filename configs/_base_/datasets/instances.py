# Generated instance shapes (circle, square, triangle, star; several colours,
# touching and overlapping, on textured backgrounds) in COCO format:
#   python tools/generate_shapes_dataset.py --instances
# writes data/instance_shapes/{train,val,test}/*.png and
# data/instance_shapes/annotations/instances_{split}.json.
# Training sees several sizes (multiples of 32) with flips and colour jitter;
# evaluation letterboxes to one fixed size, which the ONNX export and the
# Triton preprocessing reproduce.
data_root = 'data/instance_shapes'
img_size = 160

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadDetAnnotations'),
    dict(type='DetResize', scales=[(128, 128), (160, 160), (192, 192)],
         keep_ratio=True),
    dict(type='DetRandomFlip', prob=0.5),
    dict(type='DetPhotometric'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadDetAnnotations'),
    dict(type='DetLetterbox', size=(img_size, img_size)),
    dict(type='PackDetInputs'),
]
_dataset = dict(type='CocoDetDataset', data_root=data_root)
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_dataset, ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, ann_file='annotations/instances_test.json',
                 data_prefix=dict(img='test/'), pipeline=test_pipeline,
                 test_mode=True))
val_evaluator = dict(type='CocoMetric', metric=('bbox', ))
test_evaluator = val_evaluator
