"""The autograd path of the attention (RoPE by concatenation) computes what
the inference path (RoPE written in place) computes."""
import torch

from dinov3_mm.models.layers import (RopePositionEmbedding, SelfAttention,
                                     apply_rope)


def test_apply_rope_paths_agree():
    sin, cos = RopePositionEmbedding(embed_dim=64, num_heads=2)(3, 4)
    qk = torch.randn(2, 2, 2, 5 + 12, 32)
    with torch.no_grad():
        inference = apply_rope(qk, (sin, cos))
    training = apply_rope(qk.clone().requires_grad_(), (sin, cos))
    assert training.requires_grad
    torch.testing.assert_close(training.detach(), inference, rtol=0, atol=1e-6)


def test_self_attention_training_matches_inference_and_reference():
    torch.manual_seed(0)
    attn = SelfAttention(64, 2, mask_k_bias=True)
    rope = RopePositionEmbedding(embed_dim=64, num_heads=2)(3, 4)
    x = torch.randn(2, 5 + 12, 64, requires_grad=True)
    out = attn(x, rope)
    with torch.no_grad():
        inference = attn(x, rope)
    torch.testing.assert_close(out.detach(), inference, rtol=1e-5, atol=1e-5)

    # plain reference: separate q/k/v, official RoPE, explicit softmax
    def reference(x):
        B, N, C = x.shape
        w, b = attn.qkv.weight, attn.qkv.bias * attn.qkv.bias_mask
        q, k, v = (torch.nn.functional.linear(x, w_, b_).view(
            B, N, 2, 32).transpose(1, 2)
            for w_, b_ in zip(w.chunk(3), b.chunk(3)))
        sin, cos = rope

        def rot(t):
            p = t[..., 5:, :]
            p1, p2 = p.chunk(2, -1)
            p = p * cos + torch.cat((-p2, p1), -1) * sin
            return torch.cat((t[..., :5, :], p), -2)

        q, k = rot(q), rot(k)
        a = (q @ k.transpose(-1, -2) / 32**0.5).softmax(-1) @ v
        return attn.proj(a.transpose(1, 2).reshape(B, N, C))

    grad = torch.randn_like(out)
    g_ours, = torch.autograd.grad(out, x, grad)
    ref = reference(x)
    g_ref, = torch.autograd.grad(ref, x, grad)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-5)


def _backward_node_names(tensor):
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_training_path_backward_does_not_scatter_into_zeros():
    """Indexing (qkv[2], qk[..., :half]) has a backward that allocates a
    zero gradient of the whole input per slice; split and squeeze do not."""
    attn = SelfAttention(64, 2, mask_k_bias=True)
    rope = RopePositionEmbedding(embed_dim=64, num_heads=2)(3, 4)
    out = attn(torch.randn(2, 5 + 12, 64, requires_grad=True), rope)
    names = _backward_node_names(out)
    assert {'SplitWithSizesBackward0', 'SqueezeBackward1'} <= names
    assert not names & {'SliceBackward0', 'SelectBackward0'}, names
