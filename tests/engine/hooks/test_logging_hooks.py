"""Training logs: an early first line, labelled per-group learning rates."""
import glob
import json
import logging
import os
import re

import pytest

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.engine.runner import StrictRunner
from dinov3_mm.visualization.curves import plot_training_curves

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
    root = tmp_path_factory.mktemp('logging_shapes')
    return write_shape_dataset(str(root), num_per_class=4, size=32,
                               splits=('train', ))


def _train(shapes, work_dir, logger, optim_wrapper=None, max_epochs=2):
    """Train a tiny classifier: 12 images, batch 3, 4 iterations/epoch."""
    runner = StrictRunner(
        model=dict(type='DINOv3Classifier', backbone=TINY_VIT,
                   head=dict(type='LinearClsHead', num_classes=3,
                             in_channels=48)),
        work_dir=str(work_dir),
        train_dataloader=dict(
            batch_size=3, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(type='ImageFolderDataset', data_root=shapes,
                         split='train', pipeline=PIPELINE)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=optim_wrapper or dict(
            optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(runtime_info=dict(type='GroupLrRuntimeInfoHook'),
                           logger=logger, checkpoint=None),
        log_processor=dict(type='GroupLrLogProcessor', by_epoch=True),
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        default_scope='dinov3_mm',
        randomness=dict(seed=0),
        log_level=logging.INFO,
        experiment_name=f'logging_{os.getpid()}_{work_dir.name}')
    runner.train()
    return runner


def _train_lines(work_dir):
    (log_file, ) = glob.glob(str(work_dir / '*' / '*.log'))
    with open(log_file) as fh:
        return [line for line in fh if 'Epoch(train)' in line]


def _scalars(work_dir):
    (path, ) = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    with open(path) as fh:
        return path, [json.loads(line) for line in fh if line.strip()]


def _headers(lines):
    return [re.search(r'\[\s*(\d+)\]\[\s*(\d+)/(\d+)\]', line).groups()
            for line in lines]


def test_short_epochs_log_from_the_first_iteration(shapes, tmp_path):
    _train(shapes, tmp_path / 'epoch_aware',
           dict(type='EpochAwareLoggerHook', interval=50))
    headers = _headers(_train_lines(tmp_path / 'epoch_aware'))
    # the first iteration, then every min(50, 4) iterations
    assert headers == [('1', '1', '4'), ('1', '4', '4'), ('2', '4', '4')]


def test_mmengine_logger_waits_for_the_end_of_the_epoch(shapes, tmp_path):
    _train(shapes, tmp_path / 'plain', dict(type='LoggerHook', interval=50))
    headers = _headers(_train_lines(tmp_path / 'plain'))
    assert headers == [('1', '4', '4'), ('2', '4', '4')]


def test_epoch_aware_interval_smaller_than_the_epoch(shapes, tmp_path):
    _train(shapes, tmp_path / 'every2',
           dict(type='EpochAwareLoggerHook', interval=2), max_epochs=1)
    headers = _headers(_train_lines(tmp_path / 'every2'))
    assert headers == [('1', '1', '4'), ('1', '2', '4'), ('1', '4', '4')]


def test_layer_decay_learning_rates_are_labelled(shapes, tmp_path):
    work_dir = tmp_path / 'llrd'
    _train(shapes, work_dir, dict(type='EpochAwareLoggerHook', interval=1),
           optim_wrapper=dict(
               optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
               constructor='LayerDecayOptimWrapperConstructor',
               paramwise_cfg=dict(layer_decay_rate=0.5,
                                  backbone_lr_mult=0.1)),
           max_epochs=1)
    path, records = _scalars(work_dir)
    train = [r for r in records if 'loss' in r]
    assert len(train) == 4
    rates = {k: v for k, v in train[0].items() if k.startswith('lr')}
    # `lr` stays the configured rate (the head's), not layer 0's
    assert rates['lr'] == pytest.approx(1e-3)
    assert rates['lr/head'] == pytest.approx(1e-3)
    layers = sorted(k for k in rates if k.startswith('lr/backbone.layer_'))
    assert layers == ['lr/backbone.layer_0', 'lr/backbone.layer_1',
                      'lr/backbone.layer_2', 'lr/backbone.layer_3']
    # decay 0.5 per layer below the top block, times backbone_lr_mult 0.1
    assert rates['lr/backbone.layer_3'] == pytest.approx(1e-4)
    assert rates['lr/backbone.layer_0'] == pytest.approx(1e-4 * 0.5**3)
    line = _train_lines(work_dir)[0]
    assert 'lr: 1.0000e-03 lr/backbone.layer_0: 1.2500e-05' in line
    assert 'lr/head: 1.0000e-03' in line
    out = plot_training_curves(path, str(tmp_path / 'curves.png'))
    assert os.path.getsize(out) > 0


def test_one_learning_rate_logs_only_lr(shapes, tmp_path):
    work_dir = tmp_path / 'single'
    _train(shapes, work_dir, dict(type='EpochAwareLoggerHook', interval=4),
           max_epochs=1)
    _, records = _scalars(work_dir)
    train = [r for r in records if 'loss' in r]
    assert train and all(
        [k for k in r if k.startswith('lr')] == ['lr'] for r in train)
