"""Multi-scale deformable attention: core vs a naive bilinear reference,
gradients, module shapes, init and degenerate cases."""
import math

import pytest
import torch

from dinov3_mm.models.layers.ms_deform_attn import (
    MSDeformAttn, multi_scale_deformable_attention, normalize_spatial_shapes)

SHAPES = [(4, 5), (2, 3), (1, 1)]


def naive_bilinear(value_map, x, y):
    """Sample ``value_map`` (D, h, w) at normalised (x, y): pixel centres at
    ``(i + 0.5) / size``, zero outside (align_corners=False, zero padding).
    """
    _, h, w = value_map.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(value_map.shape[0], dtype=value_map.dtype)
    for yi, wy in ((y0, y0 + 1 - py), (y0 + 1, py - y0)):
        for xi, wx in ((x0, x0 + 1 - px), (x0 + 1, px - x0)):
            if 0 <= yi < h and 0 <= xi < w:
                out = out + wy * wx * value_map[:, yi, xi]
    return out


def naive_msda(value, shapes, locations, weights):
    """Loop over batch, queries, heads, levels and points."""
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = locations.shape
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    out = torch.zeros(n, lq, m, d, dtype=value.dtype)
    for b in range(n):
        for q in range(lq):
            for head in range(m):
                for lvl, (h, w) in enumerate(shapes):
                    level_map = value[b, starts[lvl]:starts[lvl + 1],
                                      head].T.reshape(d, h, w)
                    for p in range(num_points):
                        x, y = locations[b, q, head, lvl, p].tolist()
                        out[b, q, head] += weights[b, q, head, lvl, p] * (
                            naive_bilinear(level_map, x, y))
    return out.reshape(n, lq, m * d)


def random_inputs(n=2, lq=5, m=2, d=3, points=2, shapes=SHAPES, seed=0,
                  dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(n, s, m, d, generator=g, dtype=dtype)
    # Some locations fall outside [0, 1] to exercise the zero padding.
    locations = torch.rand(n, lq, m, len(shapes), points, 2, generator=g,
                           dtype=dtype) * 1.4 - 0.2
    weights = torch.rand(n, lq, m, len(shapes), points, generator=g,
                         dtype=dtype)
    return value, locations, weights


def test_core_matches_naive_reference():
    value, locations, weights = random_inputs()
    out = multi_scale_deformable_attention(value, SHAPES, locations, weights)
    ref = naive_msda(value, SHAPES, locations, weights)
    assert out.shape == (2, 5, 6)
    assert (out - ref).abs().max() < 1e-5


def test_core_accepts_a_shape_tensor():
    value, locations, weights = random_inputs(seed=1)
    out = multi_scale_deformable_attention(value, torch.tensor(SHAPES),
                                           locations, weights)
    ref = multi_scale_deformable_attention(value, SHAPES, locations, weights)
    assert torch.equal(out, ref)
    assert normalize_spatial_shapes(torch.tensor(SHAPES)) == SHAPES


def test_core_gradients():
    value, locations, weights = random_inputs(seed=2)
    for t in (value, locations, weights):
        t.requires_grad_(True)
    out = multi_scale_deformable_attention(value, SHAPES, locations, weights)
    (out * torch.randn_like(out)).sum().backward()
    for t in (value, locations, weights):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_core_gradcheck():
    shapes = [(3, 2), (1, 2)]
    inputs = random_inputs(n=1, lq=2, m=1, d=2, points=2, shapes=shapes,
                           seed=3, dtype=torch.float64)
    inputs = [t.requires_grad_(True) for t in inputs]

    def fn(value, locations, weights):
        return multi_scale_deformable_attention(value, shapes, locations,
                                                weights)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_core_rejects_inconsistent_shapes():
    value, locations, weights = random_inputs()
    with pytest.raises(ValueError, match='positions'):
        multi_scale_deformable_attention(value, [(4, 5), (2, 3), (2, 1)],
                                         locations, weights)
    with pytest.raises(ValueError, match='levels'):
        multi_scale_deformable_attention(value, SHAPES[:2], locations,
                                         weights)


def test_module_output_shape_and_grads():
    attn = MSDeformAttn(d_model=16, n_levels=3, n_heads=4, n_points=2,
                        ratio=0.5)
    assert attn.value_proj.out_features == 8
    s = sum(h * w for h, w in SHAPES)
    query = torch.randn(2, 7, 16)
    refs = torch.rand(2, 7, 3, 2)
    feat = torch.randn(2, s, 16)
    out = attn(query, refs, feat, SHAPES)
    assert out.shape == (2, 7, 16)
    out.sum().backward()
    assert all(p.grad is not None for p in attn.parameters())
    # Boxes (cx, cy, w, h) as reference.
    boxes = torch.cat([torch.rand(2, 7, 3, 2), torch.full((2, 7, 3, 2), .3)],
                      -1)
    assert attn(query, boxes, feat, SHAPES).shape == (2, 7, 16)


def test_module_init_follows_deformable_detr():
    attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=4, n_points=3)
    bias = attn.sampling_offsets.bias.detach().view(4, 2, 3, 2)
    # Head 0 looks right, head 1 down (0, 1), head 2 left, head 3 up.
    directions = torch.tensor([[1., 0.], [0., 1.], [-1., 0.], [0., -1.]])
    for p in range(3):
        for lvl in range(2):
            assert torch.allclose(bias[:, lvl, p], directions * (p + 1),
                                  atol=1e-6)
    assert attn.sampling_offsets.weight.abs().sum() == 0
    assert attn.attention_weights.weight.abs().sum() == 0
    assert attn.attention_weights.bias.abs().sum() == 0


def _zero_offsets(attn):
    with torch.no_grad():
        attn.sampling_offsets.weight.zero_()
        attn.sampling_offsets.bias.zero_()
        attn.attention_weights.weight.zero_()  # uniform weights
        attn.attention_weights.bias.zero_()


def test_zero_offsets_uniform_weights_on_constant_maps():
    shapes = SHAPES[:2]  # (4, 5) and (2, 3)
    attn = MSDeformAttn(d_model=8, n_levels=2, n_heads=2, n_points=4)
    _zero_offsets(attn)
    s = sum(h * w for h, w in shapes)
    constant = torch.randn(8)
    feat = constant.expand(1, s, 8)
    # Reference points between the outermost pixel centres of every map (no
    # zero padding reaches them): every sample is the constant, so the output
    # is the projected constant for every query.
    refs = torch.rand(1, 6, 2, 2) * 0.5 + 0.25
    out = attn(torch.randn(1, 6, 8), refs, feat, shapes)
    expected = attn.output_proj(attn.value_proj(constant))
    assert torch.allclose(out, expected.expand_as(out), atol=1e-5)


def test_zero_offsets_at_pixel_centres_pick_the_pixel():
    attn = MSDeformAttn(d_model=8, n_levels=1, n_heads=2, n_points=3)
    _zero_offsets(attn)
    h, w = 3, 4
    ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h,
                            (torch.arange(w) + 0.5) / w, indexing='ij')
    refs = torch.stack([xs.flatten(), ys.flatten()], -1)[None, :, None]
    feat = torch.randn(2, h * w, 8)
    out = attn(torch.randn(2, h * w, 8), refs, feat, [(h, w)])
    assert torch.allclose(out, attn.output_proj(attn.value_proj(feat)),
                          atol=1e-5)


def test_module_rejects_bad_configs():
    with pytest.raises(ValueError, match='divisible by n_heads'):
        MSDeformAttn(d_model=10, n_heads=4)
    with pytest.raises(ValueError, match='multiple of n_heads'):
        MSDeformAttn(d_model=16, n_heads=8, ratio=0.25)
    attn = MSDeformAttn(d_model=8, n_levels=2, n_heads=2, n_points=1)
    with pytest.raises(ValueError, match='n_levels=2'):
        attn(torch.randn(1, 3, 8), torch.rand(1, 3, 2, 2),
             torch.randn(1, 20, 8), [(4, 5)])
