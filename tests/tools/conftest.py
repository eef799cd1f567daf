"""Fixtures of the tool tests: a tiny config, a tool runner and tiny
trained models."""
import importlib.util
import pathlib
import textwrap
import uuid

import pytest

PROBE_MODULE = textwrap.dedent("""
    '''Tiny model, dataset and metric for the tool tests.'''
    import numpy as np
    import torch
    from mmengine.evaluator import BaseMetric
    from mmengine.model import BaseModel
    from torch import nn
    from torch.utils.data import Dataset

    from dinov3_mm.registry import DATASETS, METRICS, MODELS


    @MODELS.register_module()
    class ToolProbeModel(BaseModel):

        def __init__(self, in_dim=4, out_dim=2):
            super().__init__()
            self.linear = nn.Linear(in_dim, out_dim)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.linear(inputs)
            if mode == 'loss':
                return dict(loss=((out - data_samples) ** 2).mean())
            if mode == 'predict':
                return [dict(pred=p, target=t)
                        for p, t in zip(out, data_samples)]
            return out


    @DATASETS.register_module()
    class ToolProbeDataset(Dataset):
        metainfo = dict(classes=('a', 'b'))

        def __init__(self, num_samples=8):
            self.num_samples = num_samples

        def __len__(self):
            return self.num_samples

        def __getitem__(self, idx):
            gen = torch.Generator().manual_seed(idx)
            return dict(inputs=torch.randn(4, generator=gen),
                        data_samples=torch.randn(2, generator=gen))


    @METRICS.register_module()
    class ToolProbeMSE(BaseMetric):

        def process(self, data_batch, data_samples):
            for s in data_samples:
                self.results.append(
                    ((s['pred'] - s['target']) ** 2).mean().item())

        def compute_metrics(self, results):
            return dict(mse=np.float32(np.mean(results)))
    """)

CONFIG = """
custom_imports = dict(imports=[{module!r}], allow_failed_imports=False)
# no default_scope: the tools set 'dinov3_mm'
model = dict(type='ToolProbeModel')
_loader = dict(
    dataset=dict(type='ToolProbeDataset', num_samples=8),
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
    batch_size=4,
    num_workers=0,
    collate_fn=dict(type='default_collate'))
train_dataloader = _loader
test_dataloader = dict(_loader, sampler=dict(type='DefaultSampler',
                                             shuffle=False))
test_evaluator = dict(type='ToolProbeMSE')
test_cfg = dict()
train_cfg = dict(by_epoch=True, max_epochs=1)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
param_scheduler = dict(type='MultiStepLR', milestones=[1], by_epoch=True,
                       end=10)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1),
    logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0)
"""


@pytest.fixture
def tiny_config(tmp_path):
    """A config file plus the module its ``custom_imports`` names."""
    module = f'tool_probe_{uuid.uuid4().hex[:8]}'
    (tmp_path / f'{module}.py').write_text(PROBE_MODULE)
    cfg = tmp_path / 'tiny_config.py'
    cfg.write_text(CONFIG.format(module=module))
    return cfg


@pytest.fixture
def run_tool(run_python, repo_root, tmp_path):

    def run(tool, *args, env=None):
        proc = run_python(
            args=[repo_root / 'tools' / tool, *args],
            extra_paths=[tmp_path],
            env=env)
        assert proc.returncode == 0, (
            f'{tool} {args} failed:\n{proc.stdout[-3000:]}\n'
            f'{proc.stderr[-5000:]}')
        return proc

    return run


def _deploy_fixtures():
    """tests/deploy/conftest.py as a module (its checkpoint makers)."""
    path = pathlib.Path(__file__).resolve().parents[1] / 'deploy' / 'conftest.py'
    spec = importlib.util.spec_from_file_location('deploy_fixtures', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """A tiny classifier and a tiny segmentor, each config + checkpoint."""
    fixtures = _deploy_fixtures()
    root = tmp_path_factory.mktemp('models')
    (root / 'cls').mkdir()
    (root / 'seg').mkdir()
    return dict(cls=fixtures.make_cls_checkpoint(str(root / 'cls')),
                seg=fixtures.make_seg_checkpoint(str(root / 'seg')))
