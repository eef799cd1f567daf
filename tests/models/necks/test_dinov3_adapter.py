"""DINOv3Adapter (ViT-Adapter neck): pyramid shapes, gradients, config
building, injector, checkpointing, segmentor integration, ONNX export and
config errors."""
import warnings

import pytest
import torch
from torch import nn

from dinov3_mm.models.necks.dinov3_adapter import (DINOv3Adapter, Injector,
                                                   SpatialPriorModule,
                                                   get_reference_points,
                                                   vit_feature_indices)
from dinov3_mm.registry import MODELS

TINY = dict(in_channels=48, embed_dims=48, num_heads=3, conv_inplanes=8)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny tensors: extra intra-op threads only contend (``pytest -n``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def vit_maps(batch, h, w, n=4, channels=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, channels, h // 16, w // 16, generator=g)
        for _ in range(n))


def pyramid_shapes(batch, channels, h, w):
    return [(batch, channels, h // s, w // s) for s in (4, 8, 16, 32)]


@pytest.mark.parametrize('size', [(64, 64), (96, 160)])
def test_output_strides_and_shapes(size):
    h, w = size
    neck = DINOv3Adapter(**TINY)
    assert neck.needs_inputs is True
    outs = neck(vit_maps(2, h, w), torch.randn(2, 3, h, w))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == pyramid_shapes(2, 48, h, w)


def test_spatial_prior_module_strides():
    spm = SpatialPriorModule(inplanes=8, embed_dims=16)
    outs = spm(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == pyramid_shapes(1, 16, 64, 96)


def test_reference_points_are_pixel_centres():
    refs = get_reference_points([(2, 4), (1, 1)])
    assert refs.shape == (1, 9, 1, 2)
    assert torch.allclose(refs[0, :4, 0],
                          torch.tensor([[.125, .25], [.375, .25],
                                        [.625, .25], [.875, .25]]))
    assert torch.allclose(refs[0, -1, 0], torch.tensor([.5, .5]))


def test_gradients_reach_every_parameter():
    neck = DINOv3Adapter(**TINY, drop_path_rate=0.1).train()
    feats = tuple(f.requires_grad_(True) for f in vit_maps(2, 64, 64))
    outs = neck(feats, torch.randn(2, 3, 64, 64))
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    missing = [n for n, p in neck.named_parameters() if p.grad is None]
    assert not missing, missing
    # At the Deformable DETR init the offset and attention-weight layers
    # have zero weights, so the normalised query does not reach the output
    # yet: only the extractors' query norms get zero gradients.
    zero = [n for n, p in neck.named_parameters() if p.grad.abs().sum() == 0]
    assert zero and all('query_norm' in n for n in zero), zero
    assert all(f.grad is not None for f in feats)


def test_builds_from_config_with_projection_and_any_interactions():
    neck = MODELS.build(
        dict(type='DINOv3Adapter', in_channels=[32, 40], embed_dims=48,
             num_heads=3, conv_inplanes=8, norm_cfg=dict(type='GN',
                                                         num_groups=8)))
    assert isinstance(neck, DINOv3Adapter)
    assert neck.num_interactions == 2
    assert isinstance(neck.input_proj[0], nn.Conv2d)
    # Only the last interaction has the two extra extractors.
    assert neck.interactions[0].extra_extractors is None
    assert len(neck.interactions[1].extra_extractors) == 2
    feats = (torch.randn(1, 32, 4, 6), torch.randn(1, 40, 4, 6))
    outs = neck(feats, torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == pyramid_shapes(1, 48, 64, 96)

    single = DINOv3Adapter(**TINY, num_interactions=1, extra_extractor=False)
    outs = single(torch.randn(1, 48, 4, 4), torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == pyramid_shapes(1, 48, 64, 64)


def test_vit_feature_indices():
    assert vit_feature_indices(4) == [0, 1, 2, 3]  # official mapping
    assert vit_feature_indices(1) == [0, 0, 0, 0]
    assert vit_feature_indices(2) == [0, 0, 1, 1]
    assert vit_feature_indices(6) == [0, 2, 3, 5]


def test_injector_starts_as_identity_and_learns():
    injector = Injector(16, num_heads=2, n_points=2, n_levels=2)
    shapes = [(4, 4), (2, 2)]
    x = torch.randn(2, 9, 16)
    c = torch.randn(2, 20, 16)
    refs = get_reference_points([(3, 3)])
    out = injector(x, refs, c, shapes)
    assert torch.equal(out, x)
    out.sum().backward()
    assert injector.gamma.grad.abs().sum() > 0


def test_use_injector_path():
    neck = DINOv3Adapter(**TINY, use_injector=True, init_values=0.1)
    assert all(b.injector is not None for b in neck.interactions)
    outs = neck(vit_maps(2, 64, 96), torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == pyramid_shapes(2, 48, 64, 96)
    sum(o.sum() for o in outs).backward()
    missing = [n for n, p in neck.named_parameters() if p.grad is None]
    assert not missing, missing
    assert neck.interactions[0].injector.attn.value_proj.weight.grad.abs(
    ).sum() > 0
    # Off by default, as in the official adapter.
    assert DINOv3Adapter(**TINY).interactions[0].injector is None


def test_with_cp_matches_plain_forward_and_backward():
    torch.manual_seed(0)
    neck = DINOv3Adapter(**TINY, use_injector=True, init_values=0.5,
                         with_cp=True, drop_path_rate=0.).eval()
    feats = vit_maps(1, 64, 64)
    img = torch.randn(1, 3, 64, 64)

    def run():
        neck.zero_grad()
        outs = neck(feats, img)
        sum((o * o).sum() for o in outs).backward()
        return ([o.detach() for o in outs],
                {n: p.grad.clone() for n, p in neck.named_parameters()})

    outs_cp, grads_cp = run()
    for m in neck.modules():
        if hasattr(m, 'with_cp'):
            m.with_cp = False
    outs, grads = run()
    for a, b in zip(outs_cp, outs):
        assert torch.allclose(a, b, atol=1e-6)
    for name in grads:
        assert torch.allclose(grads_cp[name], grads[name], atol=1e-5), name


def test_end_to_end_in_segmentor():
    import dinov3_mm.models  # noqa: F401  (registers the segmentor parts)
    model = MODELS.build(
        dict(type='DINOv3Segmentor',
             backbone=dict(type='DINOv3ViT',
                           arch=dict(embed_dims=48, num_layers=4,
                                     num_heads=3),
                           out_type='featmap', out_indices=(0, 1, 2, 3)),
             neck=dict(type='DINOv3Adapter', in_channels=48, embed_dims=48,
                       num_heads=3),
             decode_head=dict(type='UNetHead', in_channels=[48] * 4,
                              channels=(32, 32, 16), num_classes=3)))
    assert isinstance(model.neck, DINOv3Adapter)
    logits = model(torch.randn(2, 3, 64, 64), mode='tensor')
    assert logits.shape == (2, 3, 64, 64)


class _ExportWrapper(nn.Module):
    """The adapter with the ViT maps as separate arguments."""

    def __init__(self, neck):
        super().__init__()
        self.neck = neck

    def forward(self, f0, f1, f2, f3, image):
        return self.neck((f0, f1, f2, f3), image)


def _all_op_types(graph):
    ops = []
    for node in graph.node:
        ops.append(node.op_type)
        for attr in node.attribute:
            if attr.g is not None and len(attr.g.node):
                ops += _all_op_types(attr.g)
    return ops


def test_onnx_export_matches_torch(tmp_path):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    # eval() on the wrapper itself: export restores the wrapper's mode.
    model = _ExportWrapper(DINOv3Adapter(**TINY, use_injector=True,
                                         init_values=0.5)).eval()
    args = (*vit_maps(1, 64, 96), torch.randn(1, 3, 64, 96))
    path = tmp_path / 'adapter.onnx'
    names = ['f0', 'f1', 'f2', 'f3', 'image']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer warnings on static shapes
        torch.onnx.export(model, args, str(path), opset_version=17,
                          dynamo=False, input_names=names)
    ops = _all_op_types(onnx.load(str(path)).graph)
    assert 'GridSample' in ops
    assert 'If' not in ops and 'Loop' not in ops
    session = ort.InferenceSession(str(path),
                                   providers=['CPUExecutionProvider'])
    results = session.run(None, {n: a.numpy() for n, a in zip(names, args)})
    with torch.no_grad():
        expected = model(*args)
    assert len(results) == 4
    for res, exp in zip(results, expected):
        assert res.shape == tuple(exp.shape)
        assert abs(torch.from_numpy(res) - exp).max() < 1e-4


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match=r'embed_dims \(50\) must be '
                       r'divisible by num_heads \(3\)'):
        DINOv3Adapter(in_channels=48, embed_dims=50, num_heads=3)
    with pytest.raises(ValueError, match='multiple of num_heads'):
        DINOv3Adapter(in_channels=48, embed_dims=48, num_heads=16)
    with pytest.raises(ValueError, match='num_interactions=3'):
        DINOv3Adapter(in_channels=[48, 48], num_interactions=3, num_heads=3)
    with pytest.raises(ValueError, match='at least one interaction'):
        DINOv3Adapter(**TINY, num_interactions=0)
    neck = DINOv3Adapter(**TINY)
    with pytest.raises(ValueError, match='built for 4 ViT maps'):
        neck(vit_maps(1, 64, 64, n=3), torch.randn(1, 3, 64, 64))
