# seg_shapes with the full paired image + mask augmentation for training:
# random rescale (0.5-2x), a crop in which no class covers more than 75 %
# (padded with the ignore value when the image is smaller), flip, rotation
# (corners filled with 255 in the mask) and colour jitter.
_base_ = ['./seg_shapes.py']
img_size = 64
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadSegAnnotation'),
    dict(type='RandomRescale', scale=img_size, ratio_range=(0.5, 2.0)),
    dict(type='RandomCropCatRatio', crop_size=img_size, cat_max_ratio=0.75),
    dict(type='Albumentations', transforms=[
        dict(type='HorizontalFlip', p=0.5),
        dict(type='Rotate', limit=15, border_mode=0, fill=0, fill_mask=255,
             p=0.5),
        dict(type='ColorJitter', brightness=0.2, contrast=0.2,
             saturation=0.2, hue=0.05, p=0.5),
    ]),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
