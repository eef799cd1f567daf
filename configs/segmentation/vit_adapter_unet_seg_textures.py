# vit_adapter_unet_seg_shapes.py on the generated textures: each object is
# filled with stripes, a checkerboard or dots in the two colours of its
# image's camouflage background, so only the texture tells the classes apart:
#   python tools/generate_shapes_dataset.py --seg --texture
#   python tools/train.py configs/segmentation/vit_adapter_unet_seg_textures.py
_base_ = ['./vit_adapter_unet_seg_shapes.py']

data_root = 'data/seg_textures'
classes = ('background', 'stripes', 'checker', 'dots')
palette = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0]]
_dataset = dict(data_root=data_root, classes=classes, palette=palette)
train_dataloader = dict(dataset=_dataset)
val_dataloader = dict(dataset=_dataset)
test_dataloader = dict(dataset=_dataset)
