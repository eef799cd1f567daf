"""``--compile``: mmengine's Runner compiles ``train_step`` and trains the same."""
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from dinov3_mm.engine.tool_options import enable_compile
from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample

TRAIN_PY = Path(__file__).resolve().parents[2] / 'tools' / 'train.py'
TINY_VIT = dict(embed_dims=32, num_layers=2, num_heads=2)


def _samples(n=4, size=32):
    gen = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randint(0, 256, (3, size, size), generator=gen,
                                      dtype=torch.uint8),
                 data_samples=DataSample().set_gt_label(i % 3))
            for i in range(n)]


def _first_losses(tmp_path, name, compile_cfg, iters=2):
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DINOv3Classifier',
        backbone=dict(type='DINOv3ViT', arch=TINY_VIT,
                      out_type='cls_patch_avg'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=64)))
    losses = []
    runner = Runner(
        model=model, work_dir=str(tmp_path / name),
        train_dataloader=DataLoader(_samples(), batch_size=4,
                                    collate_fn=pseudo_collate),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(checkpoint=None, logger=None),
        cfg=dict(compile=compile_cfg) if compile_cfg is not None else None,
        default_scope='dinov3_mm')
    step = runner.model.train_step

    def recording(*args, **kwargs):
        out = step(*args, **kwargs)
        losses.append(float(out['loss'].detach()))
        return out

    # compile wraps what it finds at train() time: the recording wrapper
    runner.model.train_step = recording
    runner.train()
    return losses, runner.model.train_step


def test_enable_compile_sets_the_runner_option():
    cfg = Config(dict())
    assert enable_compile(cfg).compile is True
    assert enable_compile(cfg, 'aot_eager').compile == dict(backend='aot_eager')
    cfg = Config(dict(compile=dict(mode='max-autotune')))
    assert enable_compile(cfg, 'eager').compile == dict(mode='max-autotune',
                                                        backend='eager')


def test_train_tool_compile_flag():
    spec = importlib.util.spec_from_file_location('train_tool', TRAIN_PY)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.parse_args(['c.py']).compile is None
    assert tool.parse_args(['c.py', '--compile']).compile == 'inductor'
    assert tool.parse_args(['c.py', '--compile', 'aot_eager']).compile == \
        'aot_eager'


def test_compiled_train_step_matches_eager(tmp_path):
    """The first two losses of a compiled run equal eager's.

    aot_eager traces forward and backward through dynamo and AOTAutograd
    (what inductor compiles) without inductor's C++ build time."""
    torch._dynamo.reset()
    eager, eager_step = _first_losses(tmp_path, 'eager', None)
    compiled, compiled_step = _first_losses(
        tmp_path, 'compiled', dict(enable_compile(Config(), 'aot_eager')
                                   .compile))
    assert getattr(eager_step, '_torchdynamo_orig_callable', None) is None
    assert getattr(compiled_step, '_torchdynamo_orig_callable',
                   None) is not None
    assert torch._dynamo.utils.counters['stats']['unique_graphs'] > 0
    assert len(compiled) == len(eager) == 2
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-5)
    torch._dynamo.reset()
