# Defect classification on an imbalanced inspection set (8 good images per
# defect image): frozen DINOv3 ViT-S/16 with a linear head, focal loss,
# class-weighted sampling and defect metrics at an operating point.
#
# Needs the industrial plugin (registers ClassWeightedSampler, ClsFocalLoss,
# OperatingPointMetric):
#   pip install --no-deps -e projects/industrial
# Data: an ImageFolder data/defects/{train,val,test}/{good,scratch,blob};
# generate a synthetic one with
#   python projects/industrial/tools/generate_mvtec_like.py data/defects \
#       --layout classification
# Released weights (official .pth, Hugging Face folder or dinov3_mm file):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Without them the backbone keeps its random initialisation.
_base_ = [
    '../_base_/models/vits16_cls.py', '../_base_/default_runtime.py'
]
data_root = 'data/defects'
classes = ('good', 'scratch', 'blob')
img_size = 224
work_dir = './work_dirs/vits16_linear_defect_cls_focal'

model = dict(
    # arch written out (identical to arch='small') so that --cfg-options
    # can change single entries, e.g. model.backbone.arch.num_layers=2
    backbone=dict(arch=dict(_delete_=True, embed_dims=384, num_layers=12,
                            num_heads=6),
                  frozen_stages=12),
    head=dict(
        num_classes=len(classes), in_channels=2 * 384,
        # gamma focuses on hard samples; alpha down-weights the common class
        loss=dict(_delete_=True, type='ClsFocalLoss', gamma=2.0,
                  alpha=[0.5, 1.0, 1.0])),
    data_preprocessor=dict(num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeKeepRatioPad', size=img_size),
    # surfaces have no preferred orientation
    dict(type='Albumentations', transforms=[
        dict(type='HorizontalFlip', p=0.5),
        dict(type='VerticalFlip', p=0.5),
        dict(type='RandomRotate90', p=0.5),
        dict(type='RandomBrightnessContrast', brightness_limit=0.1,
             contrast_limit=0.1, p=0.3),
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
    # each class drawn equally often on average (inverse class frequency);
    # class_weights=dict(good=1, scratch=4, blob=4) sets the balance instead
    sampler=dict(type='ClassWeightedSampler'),
    dataset=dict(type='ImageFolderDataset', data_root=data_root,
                 split='train', classes=classes, pipeline=train_pipeline))
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

# "defect" = any class but good; operating point: 95 % of defects found
operating_point = dict(type='OperatingPointMetric', negative='good',
                       target_recall=0.95, target_precision=0.9)
val_evaluator = [
    dict(type='ClsMetric', topk=(1, )),
    dict(operating_point, sweep_file=work_dir + '/val_sweep.csv'),
]
test_evaluator = [
    dict(type='ClsMetric', topk=(1, )),
    dict(operating_point, sweep_file=work_dir + '/test_sweep.json'),
]

train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs=30, val_interval=1)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=30,
         eta_min=1e-5, convert_to_iter_based=True),
]
default_hooks = dict(
    checkpoint=dict(save_best='defect/auroc', rule='greater'))
