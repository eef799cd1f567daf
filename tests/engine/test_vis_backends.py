"""TensorBoard (default), MLflow and W&B logging chosen by config."""
import os

import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from dinov3_mm.registry import DATASETS, MODELS


@MODELS.register_module(force=True)
class VisProbeModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.linear(inputs).pow(2).mean())


@DATASETS.register_module(force=True)
class VisProbeDataset(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return dict(inputs=torch.randn(4))


def _train(tmp_path, vis_backends):
    """Train 2 epochs from a config file, as tools/train.py does."""
    cfg = Config(dict(
        model=dict(type='VisProbeModel'),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            dataset=dict(type='VisProbeDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        visualizer=dict(type='Visualizer', vis_backends=vis_backends),
        # unique: mmengine reuses a Visualizer of the same name, and the
        # default name (config file + timestamp in seconds) can repeat
        experiment_name=f'vis_probe_{tmp_path.name}',
        default_scope='dinov3_mm'))
    path = tmp_path / 'cfg.py'
    cfg.dump(str(path))
    runner = Runner.from_cfg(Config.fromfile(str(path)))
    runner.train()
    return runner


def test_tensorboard_from_the_default_runtime(tmp_path):
    _train(tmp_path, [dict(type='TensorboardVisBackend')])
    events = [f for _, _, files in os.walk(tmp_path) for f in files
              if f.startswith('events.out.tfevents')]
    assert events


def test_mlflow_by_config(tmp_path, monkeypatch):
    monkeypatch.setenv('MLFLOW_ALLOW_FILE_STORE', 'true')  # local file store
    store = tmp_path / 'mlruns'
    _train(tmp_path, [dict(type='MLflowVisBackend', exp_name='probe',
                           tracking_uri=store.as_uri())])
    metric_files = [f for root, _, files in os.walk(store) for f in files
                    if os.path.basename(root) == 'metrics']
    assert 'loss' in metric_files


def test_wandb_offline_by_config(tmp_path, monkeypatch):
    monkeypatch.setenv('WANDB_MODE', 'offline')
    monkeypatch.setenv('WANDB_SILENT', 'true')
    _train(tmp_path, [dict(type='WandbVisBackend',
                           init_kwargs=dict(project='probe',
                                            dir=str(tmp_path)))])
    runs = list((tmp_path / 'wandb').glob('offline-run-*'))
    assert runs and any(runs[0].glob('*.wandb'))
