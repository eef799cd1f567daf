"""mmseg decode heads (needing mmcv built with ops) on our backbone and neck.

`make test` installs mmcv 2.1.0 with compiled ops in place of mmcv-lite, so
`type='mmseg.UPerHead'` in a config builds mmsegmentation's own head.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
from dinov3_mm.registry import MODELS


def _require_mmcv_ops():
    try:
        import mmcv.ops  # noqa: F401
    except (ImportError, OSError) as exc:
        pytest.fail(f'mmcv with compiled ops is missing ({exc}); `make test` '
                    'builds it (MMCV_WITH_OPS=1 pip install --no-build-'
                    'isolation mmcv==2.1.0).')


def _model_cfg(num_classes=4, dims=48):
    return dict(
        type='DINOv3Segmentor',
        backbone=dict(type='DINOv3ViT',
                      arch=dict(embed_dims=dims, num_layers=2, num_heads=3),
                      out_type='featmap', out_indices=(-1, )),
        neck=dict(type='SimpleFPN', in_channels=dims, out_channels=32,
                  scales=(4, 2, 1, 0.5)),
        decode_head=dict(
            type='mmseg.UPerHead', in_channels=[32] * 4,
            in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6), channels=32,
            dropout_ratio=0.1, num_classes=num_classes,
            norm_cfg=dict(type='BN', requires_grad=True),
            align_corners=False),
        auxiliary_head=dict(
            type='mmseg.FCNHead', in_channels=32, in_index=2, channels=16,
            num_convs=1, concat_input=False, num_classes=num_classes,
            norm_cfg=dict(type='BN', requires_grad=True)),
        loss_decode=dict(type='CEDiceLoss'))


def test_uperhead_builds_from_config_and_trains_a_step():
    _require_mmcv_ops()
    from mmseg.models.decode_heads import FCNHead, UPerHead
    model = MODELS.build(_model_cfg())
    assert type(model.decode_head) is UPerHead
    assert type(model.auxiliary_head) is FCNHead
    x = torch.randn(2, 3, 64, 64)
    logits = model(x, mode='tensor')
    assert logits.shape == (2, 4, 64, 64)
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 4, (1, 64, 64)))
        samples.append(s)
    losses = model(x, samples, mode='loss')
    assert set(losses) == {'loss_seg', 'loss_aux'}
    sum(losses.values()).backward()
    grads = [p.grad for p in model.decode_head.parameters()
             if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert model.backbone.blocks[0].attn.qkv.weight.grad is not None


def test_uperhead_config_runs_with_runner(repo_root, tmp_path, shrink_config):
    _require_mmcv_ops()
    data = write_seg_shapes_dataset(str(tmp_path / 'seg'), num_train=8,
                                    num_val=4, size=32)
    cfg = Config.fromfile(str(
        repo_root / 'configs/segmentation/vit_uperhead_mmseg_seg_shapes.py'))
    cfg = shrink_config(cfg, data, batch_size=4, img_size=32)
    cfg.model.backbone.arch = dict(embed_dims=48, num_layers=2, num_heads=3)
    cfg.model.neck.in_channels = 48
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    from mmseg.models.decode_heads import UPerHead
    assert type(runner.model.decode_head) is UPerHead
    runner.train()
    metrics = runner.test()
    assert {'aAcc', 'mIoU'} <= set(metrics)
