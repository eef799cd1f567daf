"""Distillation recipe end to end: a good teacher makes a random student good.

A tiny ViT teacher is trained with labels on generated shapes (so its
features separate the classes) and saved in the official format; the
distillation config then trains a smaller random ViT on the same images
without labels, with the k-NN monitors of both. The student's k-NN top-1
reaches at least 0.9x the teacher's, and its checkpoint exports through
``convert_checkpoint`` and loads strictly into a classifier config.
"""
import os

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import dinov3_mm  # noqa: F401
from dinov3_mm.apis.checkpoint_conversion import convert_checkpoint
from dinov3_mm.apis.features import images_to_tensor
from dinov3_mm.datasets.synthetic import SHAPES, make_shape_images
from dinov3_mm.models.backbones.weights import save_backbone
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.quiet_init import init_weights_quietly

SIZE = 32
TEACHER = dict(embed_dims=64, num_layers=3, num_heads=4, patch_size=8)
STUDENT = dict(embed_dims=32, num_layers=2, num_heads=2, patch_size=8)
EPOCHS = 8


def _write(root, split, per_class, seed):
    """Shapes without rotation/noise, ``root/split/<shape>/*.png``."""
    images = make_shape_images(per_class * len(SHAPES), SIZE, seed=seed)
    for shape in SHAPES:
        os.makedirs(os.path.join(root, split, shape), exist_ok=True)
    for i, image in enumerate(images):
        shape = SHAPES[i % len(SHAPES)]
        cv2.imwrite(os.path.join(root, split, shape, f'{i:04d}.png'),
                    cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return images


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    train = _write(root, 'train', 100, seed=1)
    _write(root, 'val', 30, seed=2)
    return root, train


@pytest.fixture(scope='module')
def teacher_ckpt(shapes, tmp_path_factory):
    """The tiny ViT trained with labels, as an official checkpoint."""
    init_default_scope('dinov3_mm')
    _, images = shapes
    torch.manual_seed(0)
    x = images_to_tensor(images)
    y = torch.arange(len(images)) % len(SHAPES)
    teacher = MODELS.build(dict(type='DINOv3ViT', arch=TEACHER))
    head = torch.nn.Linear(TEACHER['embed_dims'], len(SHAPES))
    opt = torch.optim.AdamW([*teacher.parameters(), *head.parameters()],
                            lr=3e-3)
    for _ in range(100):
        idx = torch.randint(0, len(x), (32, ))
        batch = x[idx]
        flip = torch.rand(len(idx), 1, 1, 1) < 0.5
        batch = torch.where(flip, batch.flip(-1), batch)
        cls = teacher.forward_features(batch)['x_norm_clstoken']
        loss = torch.nn.functional.cross_entropy(head(cls), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp('teacher') / 'teacher_official.pth'
    return save_backbone(teacher, str(path), 'official')


def distill_config(repo_root, root, teacher, work_dir):
    cfg = Config.fromfile(
        str(repo_root / 'configs' / 'distill' / 'vitb16_to_vits16_shapes.py'))
    cfg.model.teacher.arch = TEACHER
    cfg.model.teacher.init_cfg.checkpoint = teacher
    cfg.model.student = dict(type='DINOv3ViT', arch=STUDENT)
    loader = cfg.train_dataloader
    loader.dataset.data_root = f'{root}/train'
    loader.update(num_workers=0, persistent_workers=False, batch_size=32)
    crop = loader.dataset.pipeline[1].transforms[0]
    crop.update(size=(SIZE, SIZE), scale=(0.7, 1.0))  # few steps: mild crops
    for hook in cfg.custom_hooks:
        hook.k = 10
        if hook.backbone == 'backbone':
            hook.interval = EPOCHS
        for knn_loader in (hook.train_dataloader, hook.val_dataloader):
            knn_loader.dataset.data_root = root
            knn_loader.dataset.pipeline[1].size = SIZE
    cfg.train_cfg.max_epochs = EPOCHS
    cfg.param_scheduler[0].end = 1
    cfg.param_scheduler[-1].update(begin=1, end=EPOCHS)
    cfg.optim_wrapper.optimizer.lr = 3e-3
    cfg.default_hooks.checkpoint.interval = EPOCHS
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.work_dir = str(work_dir)
    return cfg


def test_student_reaches_teacher_knn_and_exports(repo_root, shapes,
                                                 teacher_ckpt, tmp_path):
    root, _ = shapes
    work = tmp_path / 'distill'
    runner = Runner.from_cfg(distill_config(repo_root, root, teacher_ckpt,
                                            work))
    runner.train()
    teacher_hook, student_hook = [h for h in runner.hooks
                                  if type(h).__name__ == 'KNNEvalHook']
    teacher_knn = teacher_hook.history[0][1]['knn_teacher/top1']
    assert teacher_hook.history[-1][1]['knn_teacher/top1'] == \
        teacher_knn  # frozen
    start = student_hook.history[0][1]['knn_student/top1']
    end = student_hook.history[-1][1]['knn_student/top1']
    assert teacher_knn > 50, teacher_knn  # 3 classes: chance is 33
    assert end >= 0.9 * teacher_knn, (start, end, teacher_knn)
    assert end >= start + 10, (start, end)

    # the student is what convert_checkpoint exports ...
    ckpt = str(work / f'epoch_{EPOCHS}.pth')
    student = runner.model.backbone.state_dict()
    official, cfg = convert_checkpoint(ckpt, str(tmp_path / 'student.pth'),
                                       'official')
    assert cfg['arch']['embed_dims'] == STUDENT['embed_dims']
    # ... and what a classifier config loads (strictly) from either file
    base = Config.fromfile(
        str(repo_root / 'configs' / '_base_' / 'models' / 'vits16_cls.py'))
    for source in (ckpt, official):
        model_cfg = base.model.copy()
        model_cfg.backbone.arch = STUDENT
        model_cfg.backbone.init_cfg.checkpoint = source
        model_cfg.head.in_channels = 2 * STUDENT['embed_dims']
        classifier = MODELS.build(model_cfg)
        init_weights_quietly(classifier)
        loaded = classifier.backbone.state_dict()
        assert loaded.keys() == student.keys()
        for key in ('blocks.1.attn.qkv.weight', 'cls_token', 'norm.weight'):
            torch.testing.assert_close(loaded[key], student[key])


@pytest.mark.parametrize('name, student_type, dense', [
    ('vitb16_to_vits16_shapes.py', 'DINOv3ViT', {'cosine'}),
    ('vits16_to_convnext_tiny_shapes.py', 'DINOv3ConvNeXt',
     {'cosine', 'relational'}),
])
def test_configs_pair_their_backbones(repo_root, name, student_type, dense):
    cfg = Config.fromfile(str(repo_root / 'configs' / 'distill' / name))
    assert cfg.model.student.type == student_type
    assert [h.backbone for h in cfg.custom_hooks] == ['teacher_backbone',
                                                      'backbone']
    assert cfg.optim_wrapper.paramwise_cfg.backbone == 'backbone'
    # the same pairing on tiny archs: one loss step on 64-px images
    cfg.model.teacher.arch = dict(embed_dims=48, num_layers=1, num_heads=3)
    cfg.model.student.arch = (
        dict(embed_dims=24, num_layers=1, num_heads=2)
        if student_type == 'DINOv3ViT' else
        dict(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32]))
    init_default_scope('dinov3_mm')
    model = MODELS.build(cfg.model)
    losses = model(torch.randn(2, 3, 64, 64), mode='loss')
    assert {k for k in losses if k.startswith('loss_dense')} == {
        f'loss_dense_{term}' for term in dense}
    assert all(torch.isfinite(v) for v in losses.values())
