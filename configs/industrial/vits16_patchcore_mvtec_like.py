# Label-free anomaly detection (PatchCore-style) with a frozen DINOv3
# ViT-S/16, read by projects/industrial/tools/anomaly_detect.py:
#   python projects/industrial/tools/anomaly_detect.py data/mvtec_like \
#       --config configs/industrial/vits16_patchcore_mvtec_like.py \
#       --checkpoint checkpoints/dinov3_vits16.pth
# Data: MVTec-AD layout <root>/<category>/{train/good,test/<label>,
# ground_truth/<defect>/<name>_mask.png}; a synthetic one comes from
#   python projects/industrial/tools/generate_mvtec_like.py data/mvtec_like
# Without a checkpoint the backbone keeps its random initialisation.
default_scope = 'dinov3_mm'
model = dict(
    type='DINOv3PatchCore',
    backbone=dict(
        type='DINOv3ViT', arch='small', out_type='featmap',
        # a middle and the last block: local texture and part semantics
        out_indices=(7, 11), init_cfg=None),
    normalization='lvd1689m',
    pool_size=3,  # 3x3 neighbourhood averaging of the patch features
    subsample=dict(method='greedy', ratio=0.1, proj_dim=128, seed=0),
    sigma=4.0,  # Gaussian smoothing of the upsampled map, input pixels
    score_mode='max')
data_root = 'data/mvtec_like'
categories = None  # every category under data_root
img_size = 224  # square input, a multiple of 16
batch_size = 8
work_dir = './work_dirs/vits16_patchcore_mvtec_like'
