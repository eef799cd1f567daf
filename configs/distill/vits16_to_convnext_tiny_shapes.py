# Distil a frozen DINOv3 ViT-S/16 into a ConvNeXt-Tiny on unlabeled images.
# The ConvNeXt's stride-32 7x7 feature map is projected to 384-d and resized
# (bilinear) to the ViT's 14x14 patch grid before the per-patch cosine; the
# patch-to-patch similarity (relational) term adds the teacher's layout.
#   python tools/train.py configs/distill/vits16_to_convnext_tiny_shapes.py \
#       --cfg-options model.teacher.init_cfg.checkpoint=checkpoints/dinov3_vits16.pth
# Export the student, a DINOv3ConvNeXt, like any backbone:
#   python tools/convert_checkpoint.py \
#       work_dirs/vits16_to_convnext_tiny_shapes/epoch_30.pth work_dirs/convnext_tiny_hf --to hf
_base_ = ['./vitb16_to_vits16_shapes.py']

model = dict(
    teacher=dict(type='DINOv3ViT', arch='small',
                 init_cfg=dict(type='Pretrained', checkpoint=None)),
    student=dict(_delete_=True, type='DINOv3ConvNeXt', arch='tiny',
                 drop_path_rate=0.1),
    global_loss=dict(cosine=1.0),
    dense_loss=dict(cosine=1.0, relational=1.0),
)
