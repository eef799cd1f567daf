"""Linear probing on cached features: same result, one backbone pass."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset

REPO_CFG = 'configs/classification/vits16_linear_probe_shapes.py'
TINY_BACKBONE = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                     frozen_stages=2)


@pytest.fixture
def make_cfg(repo_root, shapes, shrink_config):

    def make(work_dir, **train_cfg):
        cfg = shrink_config(Config.fromfile(str(repo_root / REPO_CFG)),
                            shapes, batch_size=8, img_size=32)
        cfg.model.backbone.update(TINY_BACKBONE)
        cfg.model.head.in_channels = 128
        cfg.train_cfg.update(max_epochs=6, val_interval=3, **train_cfg)
        cfg.work_dir = str(work_dir)
        cfg.default_hooks.logger.interval = 1
        return cfg

    return make


def _count_backbone_calls(runner):
    calls = []
    runner.model.backbone.register_forward_pre_hook(
        lambda m, args: calls.append(args[0].shape[0]))
    return calls


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    return write_shape_dataset(str(root), num_per_class=6, size=32)


def test_linear_probe_extracts_each_split_once(make_cfg, tmp_path):
    runner = Runner.from_cfg(make_cfg(tmp_path / 'w'))
    assert runner.max_iters == 6 * 3  # 18 images, batches of 8
    calls = _count_backbone_calls(runner)
    runner.train()
    # 18 train + 18 val images, each through the backbone exactly once,
    # although the head trained 6 epochs and validated twice
    assert sum(calls) == 36
    ckpt = torch.load(tmp_path / 'w' / 'epoch_6.pth', weights_only=True)
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])
    assert ckpt['meta']['iter'] == 6 * 3
    metrics = runner.test()
    assert 0 <= metrics['accuracy/top1'] <= 100


def test_augmented_views_cost_one_pass_each(make_cfg, tmp_path):
    runner = Runner.from_cfg(make_cfg(tmp_path / 'w', num_views=2))
    calls = _count_backbone_calls(runner)
    runner.train()
    assert sum(calls) == 2 * 18 + 18
    views = runner.train_loop.views
    assert not torch.equal(views[0][0][0], views[1][0][0])  # random flips


def test_trainable_backbone_is_rejected(make_cfg, tmp_path):
    cfg = make_cfg(tmp_path / 'w')
    cfg.model.backbone.frozen_stages = -1
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match='needs a frozen backbone'):
        runner.train()
