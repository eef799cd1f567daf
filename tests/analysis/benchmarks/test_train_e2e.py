"""The plain side of the end-to-end training benchmark does the same work."""
import torch
from mmengine.config import Config

from benchmarks.common import best_of_alternating
from benchmarks.train_e2e import REPO, plain_loop, vit_variant
from dinov3_mm.datasets.synthetic import write_shape_dataset

DEMO = f'{REPO}/configs/demo/convnext_shapes.py'


def test_plain_loop_trains_validates_and_saves(tmp_path):
    data = write_shape_dataset(str(tmp_path / 'shapes'), size=32,
                               per_split=dict(train=3, val=2))
    out = tmp_path / 'plain.pth'
    top1 = plain_loop(DEMO, 1, data, str(out))
    assert 0 <= top1 <= 100
    saved = torch.load(out, weights_only=True)  # a resumable checkpoint
    assert 'head.fc.weight' in saved['state_dict']
    states = saved['optimizer']['state'].values()
    assert states and all(s['step'] == 1 and 'exp_avg' in s for s in states)


def test_vit_variant_swaps_the_backbone_only(tmp_path):
    cfg = Config.fromfile(vit_variant(DEMO, 'small', str(tmp_path)))
    assert cfg.model.backbone.type == 'DINOv3ViT'
    assert cfg.model.backbone.arch == 'small'
    assert 'dims' not in str(cfg.model.backbone)  # ConvNeXt keys gone
    assert cfg.model.head.in_channels == 384
    assert cfg.train_dataloader == Config.fromfile(DEMO).train_dataloader


def test_best_of_alternating_flips_the_order():
    calls = []
    timers = {name: (lambda n=name: calls.append(n) or len(calls))
              for name in ('a', 'b')}
    assert best_of_alternating(timers, 3) == {'a': 1, 'b': 2}
    assert calls == ['a', 'b', 'b', 'a', 'a', 'b']
