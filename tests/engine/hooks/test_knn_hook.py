"""KNNEvalHook in real mmengine Runners (epoch and iteration based)."""
import json
import logging
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.engine.hooks.knn_hook import KNNEvalHook, resolve_module
from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample

TINY_VIT = dict(type='DINOv3ViT',
                arch=dict(embed_dims=48, num_layers=2, num_heads=3),
                out_type='cls_token')
PIPELINE = [
    dict(type='LoadImage'),
    dict(type='ResizeKeepRatioPad', size=32),
    dict(type='PackClsInputs'),
]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('knn_hook_shapes')
    return write_shape_dataset(str(root), num_per_class=4, size=32,
                               splits=('train', 'val'))


def _loader(root, split, shuffle=False):
    return dict(
        batch_size=4, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(type='ImageFolderDataset', data_root=root, split=split,
                     pipeline=PIPELINE, serialize_data=False))


def _scalars(work_dir):
    paths = [os.path.join(root, name) for root, _, files in os.walk(work_dir)
             for name in files if name == 'scalars.json']
    assert len(paths) == 1, paths
    with open(paths[0]) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_hook_in_epoch_based_classifier_training(shapes, tmp_path):
    work_dir = str(tmp_path / 'work')
    runner = Runner(
        model=dict(
            type='DINOv3Classifier', backbone=TINY_VIT,
            head=dict(type='LinearClsHead', num_classes=3, in_channels=48,
                      loss=dict(type='CrossEntropyLoss'))),
        work_dir=work_dir,
        train_dataloader=_loader(shapes, 'train', shuffle=True),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        custom_hooks=[dict(type='KNNEvalHook',
                           train_dataloader=_loader(shapes, 'train', True),
                           val_dataloader=_loader(shapes, 'val'),
                           backbone='backbone', k=5)],
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        default_scope='dinov3_mm',
        randomness=dict(seed=0),
        log_level=logging.WARNING,
        experiment_name=f'knn_epoch_{os.getpid()}_{tmp_path.name}')
    hook = next(h for h in runner.hooks if isinstance(h, KNNEvalHook))
    runner.train()

    assert [step for step, _ in hook.history] == [0, 1, 2]
    for _, metrics in hook.history:
        assert set(metrics) == {'knn/top1'}  # 3 classes: no top-5
        assert 0 <= metrics['knn/top1'] <= 100
    # the reference set is the whole train split, once, in order
    train_loader, val_loader = hook._loaders
    assert len(train_loader.dataset) == 12 and len(val_loader.dataset) == 12
    assert isinstance(train_loader.sampler, torch.utils.data.SequentialSampler)
    assert runner.model.training and runner.model.backbone.training

    records = [r for r in _scalars(work_dir) if 'knn/top1' in r]
    assert [r['step'] for r in records] == [0, 1, 2]
    assert [r['knn/top1'] for r in records] == pytest.approx(
        [m['knn/top1'] for _, m in hook.history])
    assert runner.message_hub.get_scalar('knn/top1').current() == \
        pytest.approx(hook.history[-1][1]['knn/top1'])


@MODELS.register_module(name='KNNHookToyTeacherStudent', force=True)
class ToyTeacherStudent(BaseModel):
    """Student trained on a dummy loss; an EMA-free teacher alongside."""

    def __init__(self):
        super().__init__(data_preprocessor=dict(type='ClsDataPreprocessor'))
        self.student = nn.Module()
        self.student.backbone = MODELS.build(TINY_VIT)
        self.teacher = nn.Module()
        self.teacher.backbone = MODELS.build(TINY_VIT)
        for p in self.teacher.parameters():
            p.requires_grad = False

    def forward(self, inputs, data_samples=None, mode='loss'):
        feats = self.student.backbone(inputs)[0]
        return dict(loss=feats.pow(2).mean())


def test_hook_iteration_based_nested_backbone(shapes, tmp_path):
    runner = Runner(
        model=dict(type='KNNHookToyTeacherStudent'),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=_loader(shapes, 'train', shuffle=True),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None),
        custom_hooks=[dict(type='KNNEvalHook',
                           train_dataloader=_loader(shapes, 'train'),
                           val_dataloader=_loader(shapes, 'val'),
                           backbone='teacher.backbone', k=3, interval=2,
                           by_epoch=False, before_train=False)],
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        default_scope='dinov3_mm',
        log_level=logging.WARNING,
        experiment_name=f'knn_iter_{os.getpid()}_{tmp_path.name}')
    hook = next(h for h in runner.hooks if isinstance(h, KNNEvalHook))
    runner.train()
    # every 2 iterations, and after the last one
    assert [step for step, _ in hook.history] == [2, 3]
    # a frozen, untrained teacher gives the same result each time
    assert len({m['knn/top1'] for _, m in hook.history}) == 1
    assert runner.model.teacher.backbone.training


def test_resolve_module_paths_and_errors():
    model = nn.Module()
    model.teacher = nn.Module()
    model.teacher.backbone = nn.Linear(2, 2)
    model.head = nn.Linear(2, 2)
    assert resolve_module(model, 'teacher.backbone') is model.teacher.backbone
    assert resolve_module(model, '') is model
    with pytest.raises(AttributeError) as info:
        resolve_module(model, 'teacher.encoder')
    message = str(info.value)
    assert "'teacher.encoder'" in message and "'encoder'" in message
    assert "['teacher', 'head']" in message
    with pytest.raises(AttributeError, match=r"\['teacher', 'head'\]"):
        resolve_module(model, 'backbone')
    model.scale = nn.Parameter(torch.ones(1))
    with pytest.raises(TypeError, match='not an nn.Module'):
        resolve_module(model, 'scale')


class _Unlabelled(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, idx):
        return dict(inputs=torch.zeros(3, 16, 16, dtype=torch.uint8),
                    data_samples=DataSample())


def test_dataloader_without_labels_is_a_clear_error():
    loader = dict(batch_size=2, num_workers=0, dataset=_Unlabelled())
    hook = KNNEvalHook(train_dataloader=loader, val_dataloader=loader)
    model = nn.Module()
    model.backbone = MODELS.build(TINY_VIT)
    runner = SimpleNamespace(model=model, seed=0)
    with pytest.raises(ValueError, match='no gt_label.*labelled dataset'):
        hook.evaluate(runner, 0)
    assert hook.history == []


def test_bad_arguments():
    with pytest.raises(ValueError, match='interval'):
        KNNEvalHook({}, {}, interval=0)
    with pytest.raises(ValueError, match='autocast dtype'):
        KNNEvalHook({}, {}, autocast_dtype='float77')
