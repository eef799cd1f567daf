# mmsegmentation's own UPerHead (+ FCN auxiliary head) on a DINOv3 ViT and
# the ViTDet simple feature pyramid. Needs mmcv built with ops:
#   pip uninstall -y mmcv-lite
#   MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0
# (`make test` does this once; pip caches the wheel.)
_base_ = ['./vit_unet_seg_shapes.py']
model = dict(
    decode_head=dict(
        _delete_=True, type='mmseg.UPerHead', in_channels=[64] * 4,
        in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6), channels=64,
        dropout_ratio=0.1, num_classes=4,
        norm_cfg=dict(type='BN', requires_grad=True), align_corners=False),
    auxiliary_head=dict(
        type='mmseg.FCNHead', in_channels=64, in_index=2, channels=32,
        num_convs=1, concat_input=False, dropout_ratio=0.1, num_classes=4,
        norm_cfg=dict(type='BN', requires_grad=True), align_corners=False),
    aux_weight=0.4)
