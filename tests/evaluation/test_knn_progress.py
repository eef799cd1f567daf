"""Progress bars of k-NN feature extraction (function and hook)."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.engine.hooks.knn_hook import KNNEvalHook
from dinov3_mm.evaluation.knn import extract_cls_features
from dinov3_mm.models.backbones.dinov3_vit import DINOv3ViT
from dinov3_mm.utils.progress import PROGRESS_ENV

PIPELINE = [dict(type='LoadImage'), dict(type='PackClsInputs')]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('knn_progress_shapes')
    return write_shape_dataset(str(root), num_per_class=2, size=32,
                               splits=('train', 'val'))


def _loader(root, split):
    return dict(batch_size=2, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(type='ImageFolderDataset', data_root=root,
                             split=split, pipeline=PIPELINE))


def _vit():
    torch.manual_seed(0)
    return DINOv3ViT(arch=dict(embed_dims=48, num_layers=1, num_heads=3))


@pytest.mark.parametrize('forced', ['1', None])
def test_knn_hook_shows_bars_only_when_wanted(shapes, monkeypatch, capsys,
                                              forced):
    if forced is None:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_ENV, forced)
    hook = KNNEvalHook(_loader(shapes, 'train'), _loader(shapes, 'val'), k=3)
    model = nn.Module()
    model.backbone = _vit()
    runner = SimpleNamespace(
        model=model, seed=0,
        message_hub=MessageHub.get_instance('knn_progress_test'),
        visualizer=SimpleNamespace(add_scalars=lambda *a, **k: None))
    metrics = hook.evaluate(runner, step=0)
    assert 0 <= metrics['knn/top1'] <= 100
    err = capsys.readouterr().err
    if forced:
        # 6 reference and 6 query images in batches of 2
        assert 'k-NN: reference features' in err and '/3' in err
        assert 'k-NN: query features' in err
    else:
        assert 'k-NN' not in err


def test_extract_cls_features_label_and_opt_out(shapes, monkeypatch, capsys):
    from mmengine.runner import Runner
    monkeypatch.setenv(PROGRESS_ENV, '1')
    loader = Runner.build_dataloader(
        dict(_loader(shapes, 'train'),
             dataset=dict(type='dinov3_mm.ImageFolderDataset',
                          data_root=shapes, split='train',
                          pipeline=PIPELINE)))
    feats, _ = extract_cls_features(_vit(), loader, None)
    assert feats.shape == (6, 48)
    assert 'k-NN features' in capsys.readouterr().err
    extract_cls_features(_vit(), loader, None, progress=None)
    assert capsys.readouterr().err == ''
