"""RoPE application against the official formulation, values and gradients."""
import pytest
import torch

from dinov3_mm.models.layers import RopePositionEmbedding, apply_rope


def official_rope(qk, sin, cos):
    """The official recipe: cast to the tables' dtype, rotate, cast back."""
    prefix = qk.shape[-2] - sin.shape[-2]
    x = qk[..., prefix:, :].to(sin.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = x * cos + torch.cat((-x2, x1), dim=-1) * sin
    return torch.cat((qk[..., :prefix, :], rotated.to(qk.dtype)), dim=-2)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_apply_rope_matches_official(dtype):
    rope = RopePositionEmbedding(embed_dim=64, num_heads=2)
    sin, cos = rope(3, 4)
    qk = torch.randn(2, 2, 2, 5 + 12, 32).to(dtype).requires_grad_()
    ours = apply_rope(qk, (sin, cos))
    ref = official_rope(qk, sin, cos)
    assert ours.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    assert torch.allclose(ours.float(), ref.float(), atol=tol)
    # bf16 gradients: the two halves' contributions are rounded separately
    tol = 1e-6 if dtype == torch.float32 else 5e-2
    grad = torch.randn_like(ours)
    g_ours, = torch.autograd.grad(ours, qk, grad)
    g_ref, = torch.autograd.grad(ref, qk, grad)
    assert torch.allclose(g_ours.float(), g_ref.float(), atol=tol)
    # prefix tokens pass through untouched
    assert torch.equal(ours[..., :5, :], qk[..., :5, :])


def test_apply_rope_rejects_short_sequences():
    rope = RopePositionEmbedding(embed_dim=64, num_heads=2)
    with pytest.raises(ValueError, match='RoPE tables cover 12 patches'):
        apply_rope(torch.randn(2, 1, 2, 10, 32), rope(3, 4))
