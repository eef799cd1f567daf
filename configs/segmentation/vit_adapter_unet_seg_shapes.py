# Small random-init DINOv3 ViT (4 blocks, 96 channels) + DINOv3 ViT-Adapter +
# UNet decoder, trained from scratch on the generated shapes (64 px):
#   python tools/generate_shapes_dataset.py --seg
#   python tools/train.py configs/segmentation/vit_adapter_unet_seg_shapes.py
# The adapter's convolutional spatial prior supplies the stride-4 detail that
# 16-px ViT patches lack at this resolution.
_base_ = [
    '../_base_/datasets/seg_shapes.py', '../_base_/schedules/seg_40e.py',
    '../_base_/seg_runtime.py'
]
num_classes = 4
embed_dims = 96
model = dict(
    type='DINOv3Segmentor',
    data_preprocessor=dict(normalization='lvd1689m'),
    backbone=dict(
        type='DINOv3ViT',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=3),
        out_type='featmap', out_indices=(0, 1, 2, 3)),
    neck=dict(type='DINOv3Adapter', in_channels=embed_dims,
              embed_dims=64, num_heads=4, conv_inplanes=32,
              drop_path_rate=0.0),
    decode_head=dict(type='UNetHead', in_channels=[64] * 4,
                     channels=(64, 64, 32), num_classes=num_classes,
                     dropout_ratio=0.0),
    loss_decode=dict(type='CEDiceLoss', ce_weight=1.0, dice_weight=1.0),
    test_cfg=dict(mode='whole'))
max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
