"""Every shipped classification config trains, validates and tests (tiny sizes)."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset

CONFIGS = [
    'configs/classification/vits16_finetune_llrd_shapes.py',
    'configs/classification/vits16_lora_shapes.py',
    'configs/demo/convnext_shapes.py',
]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    return write_shape_dataset(str(root), num_per_class=4, size=32)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_trains_and_tests(path, repo_root, shapes, tmp_path,
                                 shrink_config):
    cfg = shrink_config(Config.fromfile(str(repo_root / path)), shapes,
                        img_size=32)
    if cfg.model.backbone.type == 'DINOv3ViT':
        cfg.model.backbone.arch = dict(embed_dims=64, num_layers=2,
                                       num_heads=2)
        cfg.model.head.in_channels = 128
    cfg.train_cfg.max_epochs = 2
    cfg.train_cfg.val_interval = 1
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert 'accuracy/top1' in metrics
    assert (tmp_path / 'plots' / 'test' / 'confusion_matrix.png').is_file()
    assert (tmp_path / 'plots' / 'training_curves.png').is_file()
    ckpt = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    assert ckpt['meta']['epoch'] == 2
    if 'lora' in path:
        trainable = [n for n, p in runner.model.named_parameters()
                     if p.requires_grad]
        assert trainable and all('lora_' in n or n.startswith('head.')
                                 for n in trainable)
    if 'llrd' in path:
        lrs = {g['lr'] for g in runner.optim_wrapper.param_groups}
        assert len(lrs) > 2  # layer-wise decay gives several learning rates
        assert 'ema_state_dict' in ckpt
