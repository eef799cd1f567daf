"""Self-supervised continuation from a stand-in for released weights.

A tiny ViT is first trained briefly with labels (the stand-in for a released
DINOv3 checkpoint, written in the official format); the SSL config then
continues it on the same images without labels, with the k-NN monitor on a
labelled split, and the continued teacher backbone is exported and reused.
"""
import json
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.datasets.transforms.loading import read_image
from dinov3_mm.apis.features import images_to_tensor
from dinov3_mm.apis.checkpoint_conversion import convert_checkpoint
from dinov3_mm.models.backbones.weights import load_pretrained, save_backbone
from dinov3_mm.registry import MODELS

ARCH = dict(embed_dims=96, num_layers=4, num_heads=3)
SIZE = 64
EPOCHS = 6


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    return write_shape_dataset(str(root), size=SIZE, seed=0,
                               per_split=dict(train=20, val=10, test=1))


@pytest.fixture(scope='module')
def released(shapes, tmp_path_factory):
    """A briefly supervised tiny ViT saved as an official checkpoint."""
    import glob
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='DINOv3ViT', arch=ARCH))
    paths = sorted(glob.glob(f'{shapes}/train/*/*.png'))
    classes = sorted({p.split('/')[-2] for p in paths})
    x = images_to_tensor([read_image(p) for p in paths])
    y = torch.tensor([classes.index(p.split('/')[-2]) for p in paths])
    head = torch.nn.Linear(ARCH['embed_dims'], len(classes))
    opt = torch.optim.AdamW([*backbone.parameters(), *head.parameters()],
                            lr=1e-3)
    for _ in range(40):
        idx = torch.randint(0, len(x), (30, ))
        cls = backbone.forward_features(x[idx])['x_norm_clstoken']
        loss = torch.nn.functional.cross_entropy(head(cls), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp('released') / 'vit_tiny_official.pth'
    return save_backbone(backbone, str(path), 'official')


def ssl_config(repo_root, name, shapes, released, work_dir, epochs=3):
    cfg = Config.fromfile(str(repo_root / 'configs' / 'ssl' / name))
    cfg.model.backbone.arch = ARCH
    cfg.model.backbone.init_cfg.checkpoint = released
    cfg.model.dino_head = dict(out_dim=256, hidden_dim=256,
                               bottleneck_dim=64)
    loader = cfg.train_dataloader
    loader.dataset.data_root = f'{shapes}/train'
    loader.num_workers = 0
    loader.persistent_workers = False
    loader.batch_size = 12
    loader.dataset.pipeline[1].update(global_crops_size=SIZE,
                                      local_crops_size=32,
                                      local_crops_number=4)
    for hook in cfg.custom_hooks:
        if hook.type == 'KNNEvalHook':
            for knn_loader in (hook.train_dataloader, hook.val_dataloader):
                knn_loader.dataset.data_root = shapes
                knn_loader.dataset.pipeline[1].size = SIZE
    cfg.train_cfg.max_epochs = epochs
    cfg.param_scheduler[-1].end = epochs
    # a few dozen steps instead of thousands: a larger step size
    cfg.optim_wrapper.optimizer.lr *= 10
    cfg.work_dir = str(work_dir)
    return cfg


def _scalars(work_dir):
    path = next(work_dir.glob('*/vis_data/scalars.json'))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_continuation_learns_without_collapse_and_exports(
        repo_root, shapes, released, tmp_path):
    work = tmp_path / 'ssl'
    cfg = ssl_config(repo_root, 'vits16_continue_shapes.py', shapes,
                     released, work, epochs=EPOCHS)
    runner = Runner.from_cfg(cfg)
    runner.train()
    start = torch.load(released, weights_only=True)
    moved = (runner.model.teacher.backbone.blocks[0].attn.qkv.weight -
             start['blocks.0.attn.qkv.weight']).abs().max()
    assert moved > 1e-4  # the EMA teacher followed the student

    rows = [r for r in _scalars(work) if 'loss' in r]
    assert rows and all(math.isfinite(r[k]) for r in rows for k in r
                        if k.startswith('loss'))
    first, last = rows[0]['loss'], rows[-1]['loss']
    assert last < first, (first, last)
    for term in ('loss_dino_global', 'loss_dino_local', 'loss_ibot',
                 'loss_koleo', 'loss_gram'):
        assert term in rows[-1]
    floor = 0.1 / math.sqrt(ARCH['embed_dims'])  # CollapseMonitorHook's
    assert rows[-1]['student_std'] > floor
    knn = [h for h in runner.hooks if type(h).__name__ == 'KNNEvalHook'][0]
    before, after = knn.history[0][1]['knn/top1'], knn.history[-1][1][
        'knn/top1']
    assert [step for step, _ in knn.history] == list(range(EPOCHS + 1))
    assert after >= before, knn.history
    collapse = [h for h in runner.hooks
                if type(h).__name__ == 'CollapseMonitorHook'][0]
    assert collapse.alarms == 0

    # the teacher backbone, exported to the official and HF formats ...
    ckpt = str(work / f'epoch_{EPOCHS}.pth')
    teacher = runner.model.teacher.backbone.state_dict()
    official, _ = convert_checkpoint(ckpt, str(tmp_path / 'official.pth'),
                                     'official')
    hf_dir, arch = convert_checkpoint(ckpt, str(tmp_path / 'hf'), 'hf')
    assert arch['arch']['embed_dims'] == ARCH['embed_dims']
    assert (tmp_path / 'hf' / 'config.json').is_file()
    # ... and used directly as init_cfg of another model
    for source in (ckpt, official, hf_dir):
        fresh = MODELS.build(dict(type='DINOv3ViT', arch=ARCH))
        load_pretrained(fresh, source)
        for key in ('blocks.3.attn.qkv.weight', 'cls_token', 'norm.weight'):
            torch.testing.assert_close(fresh.state_dict()[key], teacher[key])


def test_lora_continuation_trains_only_adapters_and_heads(
        repo_root, shapes, released, tmp_path):
    cfg = ssl_config(repo_root, 'vits16_lora_continue_shapes.py', shapes,
                     released, tmp_path, epochs=2)
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h.type == 'DINOTeacherHook']
    runner = Runner.from_cfg(cfg)
    runner.train()
    trainable = [n for n, p in runner.model.named_parameters()
                 if p.requires_grad]
    assert trainable and all(
        'lora_' in n or '_head.' in n for n in trainable), trainable[:5]
    assert any('student.backbone' in n for n in trainable)
    assert not any(n.startswith('teacher.') for n in trainable)
