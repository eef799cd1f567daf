# Multispectral land-cover segmentation on GeoTIFF tiles: a ViT-S/16 whose
# patch embedding takes 6 Sentinel-2-like bands, a ViTDet simple feature
# pyramid and a UNet decoder, fine-tuned with layer-wise lr decay and a
# resolution schedule (128 px crops, then 256 px from epoch 20).
#
# Needs the satellite plugin:  pip install -e projects/satellite
# Data:  python projects/satellite/tools/generate_geotiff_dataset.py \
#            data/satellite_landcover
# Train: python tools/train.py configs/satellite/vits16_unet_multispectral.py
#
# Normalisation happens in the pipeline (NormalizeBands): the SAT-493M RGB
# statistics for B4, B3, B2 (reflectance x 1e-4, clipped to 0-1) and
# measured statistics for B8, B11, B12 (recompute them for your data with
# projects/satellite/tools/compute_band_stats.py). The data preprocessor
# only pads (normalization=None): mmengine's image preprocessor normalises
# 1 or 3 channels only.
#
# Pretrained weights: the 3-channel patch embedding of any RGB DINOv3
# checkpoint is adapted to the 6 bands (RGB kernels copied to B4, B3, B2,
# their mean for the other bands, all scaled by 3/6):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# SAT-493M weights are released for ViT-L/16 (vitl16_unet_multispectral.py);
# with the LVD-1689M ViT-S/16 weights, preset='lvd1689m' matches their RGB
# statistics. Without a checkpoint the backbone starts from random weights.
# For real imagery, raise the schedule to e.g. [(0, 224), (20, 512)].
_base_ = [
    '../_base_/models/vits16_seg.py', '../_base_/schedules/seg_40e.py',
    '../_base_/default_runtime.py'
]
# Also works with plugin discovery off (DINOV3_MM_NO_PLUGINS=1).
custom_imports = dict(imports=['dinov3_mm_satellite'],
                      allow_failed_imports=False)

data_root = 'data/satellite_landcover'
classes = ('water', 'vegetation', 'bare_soil', 'built_up')
palette = [[30, 90, 200], [40, 160, 60], [190, 150, 90], [200, 60, 60]]
num_classes = 4
# Bands as stored in the files, and the selection fed to the model (R, G, B
# first, where the RGB preset and the pretrained RGB kernels go).
band_names = ('B2', 'B3', 'B4', 'B8', 'B11', 'B12')
bands = ('B4', 'B3', 'B2', 'B8', 'B11', 'B12')
in_channels = 6
crop_size = 128
final_size = 256
max_epochs = 40

normalize = dict(
    type='NormalizeBands', preset='sat493m', rgb_indices=(0, 1, 2),
    extra_mean=(0.239, 0.216, 0.165), extra_std=(0.134, 0.121, 0.112),
    scale=1e-4, clip=(0.0, 1.0))

model = dict(
    data_preprocessor=dict(normalization=None, pad_size_divisor=16),
    backbone=dict(
        type='MultispectralDINOv3ViT', in_channels=in_channels,
        rgb_band_indices=(0, 1, 2), out_indices=(-1, ), frozen_stages=-1,
        drop_path_rate=0.1),
    neck=dict(type='SimpleFPN', in_channels=384, out_channels=128,
              scales=(4, 2, 1, 0.5)),
    decode_head=dict(type='UNetHead', in_channels=[128] * 4,
                     channels=(128, 64, 64), num_classes=num_classes,
                     dropout_ratio=0.1))

train_pipeline = [
    dict(type='LoadMultispectralGeoTIFF'),
    dict(type='LoadGeoTIFFAnnotation'),
    dict(type='SelectBands', bands=bands),
    normalize,
    dict(type='RandomRescale', scale=crop_size, ratio_range=(0.75, 1.5)),
    dict(type='RandomCropCatRatio', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlipRot90'),
    dict(type='SpectralJitter', gain_range=(0.9, 1.1), offset_range=0.1,
         noise_std=0.02, prob=0.5),
    dict(type='PackMultispectralSegInputs', num_channels=in_channels),
]
# Tiles are evaluated whole at their own resolution; SelectBands and
# NormalizeBands are also what projects/satellite/tools/infer_scene.py
# applies to every window of a large scene.
test_pipeline = [
    dict(type='LoadMultispectralGeoTIFF'),
    dict(type='LoadGeoTIFFAnnotation'),
    dict(type='SelectBands', bands=bands),
    normalize,
    dict(type='PackMultispectralSegInputs', num_channels=in_channels),
]
_dataset = dict(type='GeoTIFFSegDataset', data_root=data_root,
                classes=classes, palette=palette, band_names=band_names,
                min_bands=len(band_names))
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_dataset, img_dir='img_dir/train', ann_dir='ann_dir/train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, img_dir='img_dir/val', ann_dir='ann_dir/val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='SegMetric', iou_metrics=('mIoU', 'mDice'))
test_evaluator = val_evaluator

train_cfg = dict(type='ResumableEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, backbone_lr_mult=0.1,
                       patch_embed_lr_mult=10.0))
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='mIoU', rule='greater'))
# SegVisHook (the core segmentation overlays) re-reads images as RGB files,
# which multispectral GeoTIFFs are not; the resolution schedule replaces it.
# The hook restarts the persistent workers when the size changes.
custom_hooks = [
    dict(type='ResolutionScheduleHook',
         schedule=[(0, crop_size), (max_epochs // 2, final_size)]),
]
