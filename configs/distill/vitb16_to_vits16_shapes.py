# Distil a frozen DINOv3 ViT-B/16 into a ViT-S/16 on unlabeled images: the
# student's class token (projected to 768-d) and its 14x14 patch tokens
# (projected) match the teacher's by cosine. k-NN monitors of the student and
# of the teacher on a labelled split show how close the student gets.
#   python tools/generate_shapes_dataset.py data/shapes      # stand-in data
#   python tools/train.py configs/distill/vitb16_to_vits16_shapes.py \
#       --cfg-options model.teacher.init_cfg.checkpoint=checkpoints/dinov3_vitb16.pth
# The teacher may be any dinov3_mm checkpoint too (a fine-tuned classifier,
# an SSL continuation: the loader picks its backbone). Export the student
# (official or Hugging Face format):
#   python tools/convert_checkpoint.py \
#       work_dirs/vitb16_to_vits16_shapes/epoch_30.pth work_dirs/vits16_distilled.pth --to official
# or use the checkpoint directly as a backbone init_cfg of any config with
# that backbone (classification, segmentation; the student is picked).
_base_ = ['../_base_/default_runtime.py']

unlabeled_root = 'data/shapes/train'  # any folder tree of images
labelled_root = 'data/shapes'  # ImageFolder for the k-NN monitors
img_size = 224
model = dict(
    type='DINOv3Distiller',
    data_preprocessor=dict(type='ClsDataPreprocessor',
                           normalization='lvd1689m'),
    teacher=dict(
        type='DINOv3ViT', arch='base',
        # the weights to distil: empty (None) leaves a random teacher (a
        # warning says so); --cfg-options ...init_cfg.checkpoint=PATH fills it
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    student=dict(type='DINOv3ViT', arch='small', drop_path_rate=0.1),
    # (1 - cos) of the projected class token and of every projected patch
    global_loss=dict(cosine=1.0),
    dense_loss=dict(cosine=1.0),
    teacher_autocast=None,  # 'bfloat16' on hardware that has it
)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations', transforms=[
        dict(type='RandomResizedCrop', size=(img_size, img_size),
             scale=(0.4, 1.0)),
        dict(type='HorizontalFlip', p=0.5),
    ]),
    dict(type='PackClsInputs', meta_keys=('img_path', 'sample_idx')),
]
train_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='UnlabeledImageDataset', data_root=unlabeled_root,
                 pipeline=train_pipeline, skip_unreadable=True))

max_epochs = 30
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None

# The student learns from scratch; the frozen teacher has requires_grad=False
# and this constructor leaves such parameters out of the optimizer.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05,
                   betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=3.0),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(backbone='backbone', layer_decay_rate=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=max_epochs,
         eta_min=1e-6, convert_to_iter_based=True),
]

_knn_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeKeepRatioPad', size=img_size),
    dict(type='PackClsInputs'),
]
_knn_loader = dict(batch_size=32, num_workers=0,
                   sampler=dict(type='DefaultSampler', shuffle=False))
_knn_sets = dict(
    train_dataloader=dict(_knn_loader, dataset=dict(
        type='ImageFolderDataset', data_root=labelled_root, split='train',
        pipeline=_knn_pipeline)),
    val_dataloader=dict(_knn_loader, dataset=dict(
        type='ImageFolderDataset', data_root=labelled_root, split='val',
        pipeline=_knn_pipeline)))
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2,
                    save_best=None))
# knn_teacher/top1 and knn_student/top1; the frozen teacher is measured
# before training and after the last epoch only.
custom_hooks = [
    dict(type='KNNEvalHook', backbone='teacher_backbone', k=20,
         temperature=0.07, interval=max_epochs, prefix='knn_teacher',
         **_knn_sets),
    dict(type='KNNEvalHook', backbone='backbone', k=20, temperature=0.07,
         interval=1, prefix='knn_student', **_knn_sets),
]
