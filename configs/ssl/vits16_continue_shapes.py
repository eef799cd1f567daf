# Continue DINOv3 self-supervised pretraining of ViT-S/16 on unlabeled images
# (DINO + iBOT + KoLeo losses, Sinkhorn-Knopp centring, Gram anchoring to the
# starting model), 2 global 224-px crops and 8 local 96-px crops per image.
#   python tools/generate_shapes_dataset.py data/shapes      # stand-in data
#   python tools/train.py configs/ssl/vits16_continue_shapes.py  # random start
# To continue released weights, name them in the backbone's empty slot:
#   python tools/train.py configs/ssl/vits16_continue_shapes.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Afterwards export the teacher backbone (official or Hugging Face format):
#   python tools/convert_checkpoint.py \
#       work_dirs/vits16_continue_shapes/epoch_10.pth work_dirs/vits16_continued_hf --to hf
# or use the checkpoint directly as init_cfg of a classification or
# segmentation config (the teacher backbone is picked).
_base_ = ['../_base_/default_runtime.py']

unlabeled_root = 'data/shapes/train'  # any folder tree of images
labelled_root = 'data/shapes'  # ImageFolder for the k-NN monitor
model = dict(
    type='DINOv3SSL',
    data_preprocessor=dict(type='SSLDataPreprocessor',
                           normalization='lvd1689m'),
    backbone=dict(
        type='DINOv3ViT', arch='small', drop_path_rate=0.1,
        # empty (None): training starts from random weights (a warning
        # says so); --cfg-options ...init_cfg.checkpoint=PATH fills it
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    # fewer prototypes than the official 65536: a small dataset has few modes
    dino_head=dict(out_dim=4096, hidden_dim=2048, bottleneck_dim=256,
                   nlayers=3),
    koleo_loss_weight=0.1,
    gram_loss_weight=1.0,
    centering='sinkhorn_knopp',
    mask_probability=0.5,
    mask_ratio_min_max=(0.1, 0.5))

train_pipeline = [
    dict(type='LoadImage'),
    # blur probabilities as the released weights were actually trained
    # with (first global crop never blurred; facebookresearch/dinov3#286)
    dict(type='DINOMultiCrop', global_crops_size=224, local_crops_size=96,
         local_crops_number=8, blur_probs=(0.0, 0.9, 0.5)),
    dict(type='PackMultiCropInputs'),
]
train_dataloader = dict(
    batch_size=16, num_workers=2, persistent_workers=True,
    drop_last=True,  # SSL losses work across the batch; no 1-image batch
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='UnlabeledImageDataset', data_root=unlabeled_root,
                 pipeline=train_pipeline, skip_unreadable=True))

max_epochs = 10
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None

# Continuation: a low learning rate, layer-wise decay, patch embedding x0.2.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.04,
                   betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=3.0),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(backbone='student.backbone', layer_decay_rate=0.9,
                       patch_embed_lr_mult=0.2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-6, convert_to_iter_based=True),
]

_knn_pipeline = [
    dict(type='LoadImage'),
    dict(type='ResizeKeepRatioPad', size=224),
    dict(type='PackClsInputs'),
]
_knn_loader = dict(batch_size=32, num_workers=0,
                   sampler=dict(type='DefaultSampler', shuffle=False))
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2,
                    save_best=None))
custom_hooks = [
    dict(type='DINOTeacherHook', momentum=0.992, final_momentum=1.0,
         teacher_temp=0.07, warmup_teacher_temp=0.04, warmup_epochs=1),
    dict(type='CollapseMonitorHook', std_floor=0.1, window=10),
    dict(type='KNNEvalHook', backbone='teacher.backbone', k=20,
         temperature=0.07, interval=1,
         train_dataloader=dict(_knn_loader, dataset=dict(
             type='ImageFolderDataset', data_root=labelled_root,
             split='train', pipeline=_knn_pipeline)),
         val_dataloader=dict(_knn_loader, dataset=dict(
             type='ImageFolderDataset', data_root=labelled_root,
             split='val', pipeline=_knn_pipeline))),
]
