"""ClsPlotHook in a real mmengine Runner with ClsMetric, best checkpoint and
early stopping monitoring ``accuracy/top1``."""
import json
import logging
import os

import cv2
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import dinov3_mm  # noqa: F401
from dinov3_mm.engine.hooks import ClsPlotHook
from dinov3_mm.registry import HOOKS, MODELS
from dinov3_mm.structures.data_sample import DataSample

MODEL_TYPE = 'ClsPlotHookToyClassifier'


@MODELS.register_module(name=MODEL_TYPE, force=True)
class ToyClassifier(BaseModel):
    """Linear 2-class classifier with the dinov3_mm predict contract."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self.fc(torch.stack(inputs))
        if mode == 'tensor':
            return logits
        labels = torch.cat([s.gt_label for s in data_samples])
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        scores = logits.softmax(-1)
        return [
            DataSample().set_gt_label(s.gt_label).set_pred_score(p)
            .set_pred_label(p.argmax()) for s, p in zip(data_samples, scores)
        ]


class ToyDataset(Dataset):
    """Two Gaussian blobs, slightly overlapping."""

    metainfo = dict(classes=('normal', 'defect'))

    def __init__(self, n: int = 32, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 2
        self.points = torch.randn(n, 2, generator=gen) + \
            (self.labels[:, None].float() * 2 - 1) * 1.2

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx):
        return dict(inputs=self.points[idx],
                    data_samples=DataSample().set_gt_label(
                        int(self.labels[idx])))


def _loader(seed, shuffle):
    return dict(dataset=ToyDataset(seed=seed), batch_size=8, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=shuffle),
                collate_fn=dict(type='pseudo_collate'))


def _assert_png(path):
    assert os.path.isfile(path), path
    image = cv2.imread(path)
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100


def test_runner_writes_plots_best_checkpoint_and_stops(tmp_path):
    work_dir = str(tmp_path / 'work')
    runner = Runner(
        model=dict(type=MODEL_TYPE),
        work_dir=work_dir,
        train_dataloader=_loader(0, True),
        val_dataloader=_loader(1, False),
        test_dataloader=_loader(2, False),
        train_cfg=dict(by_epoch=True, max_epochs=4, val_interval=1),
        val_cfg=dict(),
        test_cfg=dict(),
        val_evaluator=dict(type='ClsMetric'),
        test_evaluator=dict(type='ClsMetric'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1,
                            save_best='accuracy/top1', max_keep_ckpts=1)),
        custom_hooks=[
            dict(type='ClsPlotHook'),
            dict(type='EarlyStoppingHook', monitor='accuracy/top1',
                 patience=2, min_delta=0.0, stopping_threshold=101.0),
        ],
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend'),
                                      dict(type='TensorboardVisBackend')]),
        default_scope='dinov3_mm',
        randomness=dict(seed=0),
        log_level=logging.WARNING,
        experiment_name=f'cls_plot_{os.getpid()}')
    hook = next(h for h in runner.hooks if isinstance(h, ClsPlotHook))
    assert hook.priority == 'LOW' or str(hook.priority) == 'LOW'
    runner.train()

    plots = os.path.join(work_dir, 'plots')
    for name in ('confusion_matrix.png', 'roc.png', 'pr.png'):
        _assert_png(os.path.join(plots, 'val', name))
    _assert_png(os.path.join(plots, 'training_curves.png'))

    best = [f for f in os.listdir(work_dir)
            if f.startswith('best_accuracy_top1_epoch_')]
    assert len(best) == 1, os.listdir(work_dir)
    ckpt = torch.load(os.path.join(work_dir, best[0]), weights_only=True)
    assert ckpt['message_hub']['runtime_info']['best_score'] > 50

    scalars = ClsPlotHook.scalars_path(runner)
    with open(scalars) as fh:
        records = [json.loads(line) for line in fh]
    val = [r for r in records if 'accuracy/top1' in r]
    assert val and {'auroc/macro', 'f1/macro', 'precision/weighted'} <= \
        set(val[-1])
    # TensorBoard received the metric names as written
    assert any(f.startswith('events.out.tfevents') for _, _, files in
               os.walk(runner.log_dir) for f in files)

    metrics = runner.test()
    assert metrics['accuracy/top1'] > 50
    for name in ('confusion_matrix.png', 'roc.png', 'pr.png'):
        _assert_png(os.path.join(plots, 'test', name))


def test_early_stopping_stops_on_accuracy(tmp_path):
    # lr 0 never improves: patience 1 stops after epoch 2 of 6
    runner = Runner(
        model=dict(type=MODEL_TYPE),
        work_dir=str(tmp_path),
        train_dataloader=_loader(0, True),
        val_dataloader=_loader(1, False),
        train_cfg=dict(by_epoch=True, max_epochs=6, val_interval=1),
        val_cfg=dict(),
        val_evaluator=dict(type='ClsMetric', per_class=False),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=100,
                                           save_best='accuracy/top1')),
        custom_hooks=[
            dict(type='ClsPlotHook', interval=2, out_dir=str(tmp_path / 'p')),
            dict(type='EarlyStoppingHook', monitor='accuracy/top1',
                 patience=1)
        ],
        default_scope='dinov3_mm',
        log_level=logging.WARNING,
        experiment_name=f'cls_plot_stop_{os.getpid()}')
    runner.train()
    assert runner.epoch == 2
    _assert_png(str(tmp_path / 'p' / 'val' / 'roc.png'))
    _assert_png(str(tmp_path / 'p' / 'training_curves.png'))


def test_hook_registered_and_validates():
    assert HOOKS.get('ClsPlotHook') is ClsPlotHook
    with pytest.raises(ValueError, match='interval'):
        ClsPlotHook(interval=0)
