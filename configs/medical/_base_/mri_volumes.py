# MRI volumes (NIfTI or DICOM series) cut into 2D slices for segmentation.
# Needs the medical plugin: pip install -e projects/medical
# Layout (the synthetic set: projects/medical/tools/generate_mri_volumes.py):
#   <data_root>/images/{train,val}/<case>.nii.gz  (or a DICOM series folder)
#   <data_root>/labels/{train,val}/<case>.nii.gz  (same voxel grid)
# Intensities: 0.5-99.5 percentile window of each volume -> 0..255, then the
# fixed MRI gamma 0.75, then grey -> 3 channels for the RGB backbone.
data_root = 'data/mri_volumes'
classes = ('background', 'brain', 'csf', 'lesion')
palette = [[0, 0, 0], [70, 130, 180], [255, 215, 0], [220, 20, 60]]
img_size = 256
# slices are cut along `axis` after reorienting to `orientation` (axis 2 of
# RAS = axial); context=1 stacks the neighbours as channels (2.5D).
slice_cfg = dict(axis=2, context=0, orientation='RAS', ignore_index=255)
# Validation compares prediction and mask at the slice's own resolution: the
# mask is loaded after the resize (as in the core test pipelines) and the
# segmentor undoes the letterbox (ori_shape / img_shape / pad_border). Per-
# volume Dice on the stitched volumes: projects/medical/tools/infer_volume.py
# --gt.
meta_keys = ('slice_id', 'case', 'slice_index', 'seg_map_path',
             'scale_factor', 'flip', 'reduce_zero_label')
test_meta_keys = meta_keys + ('ori_shape', 'img_shape', 'pad_border')

mri_intensity = [
    dict(type='PercentileNormalize', lower=0.5, upper=99.5, scope='volume'),
    dict(type='GammaCorrection', gamma=0.75, prob=1.0),
    dict(type='GrayToRGB'),
]
train_pipeline = [
    dict(type='LoadVolumeSlice'),
    dict(type='LoadVolumeSliceAnnotation'),
    *mri_intensity,
    dict(type='RandomRescale', scale=img_size, ratio_range=(0.75, 1.5)),
    dict(type='RandomCropCatRatio', crop_size=img_size),
    dict(type='Albumentations', transforms=[
        dict(type='HorizontalFlip', p=0.5),
        dict(type='Rotate', limit=10, border_mode=0, fill=0, fill_mask=255,
             p=0.5),
    ]),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadVolumeSlice'),
    *mri_intensity,
    dict(type='ResizeKeepRatioPad', size=img_size),
    dict(type='LoadVolumeSliceAnnotation'),
    dict(type='PackSegInputs', meta_keys=test_meta_keys),
]
_dataset = dict(type='VolumeSliceDataset', data_root=data_root,
                classes=classes, palette=palette, **slice_cfg)
train_dataloader = dict(
    batch_size=8, num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_dataset, img_dir='images/train', ann_dir='labels/train',
                 empty_slice_ratio=0.2, seed=0, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, img_dir='images/val', ann_dir='labels/val',
                 empty_slice_ratio=1.0, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='SegMetric', iou_metrics=('mIoU', 'mDice'),
                     ignore_index=255)
test_evaluator = val_evaluator
