"""The training-step benchmark compares equal steps: same weights, same
batch, same loss on the first step; the script starts from the repo root."""
import pytest
import torch

from benchmarks.train_step import (benchmark_train_step, build_models,
                                   hf_step_fn, make_batch, ours_step_fn,
                                   to_markdown)


@pytest.mark.parametrize('arch, dtype, tol', [
    ('small', 'fp32', 1e-4),
    ('small', 'bf16', 2e-2),
    ('convnext_tiny', 'fp32', 1e-4),
])
def test_first_losses_agree(arch, dtype, tol):
    torch.manual_seed(0)
    row = benchmark_train_step(arch, dtype, batch_size=2, img_size=32,
                               rounds=1, iters=1, warmup=1, threads=1)
    assert row['ours_loss0'] == pytest.approx(row['hf_loss0'], abs=tol)
    assert row['ours_img_s'] > 0 and row['hf_img_s'] > 0
    assert '| small |' in to_markdown([row]) or arch != 'small'


def test_steps_stay_equal_with_the_fused_optimizer():
    """Three steps of ours (fused AdamW) and of the reference (default
    AdamW) follow the same loss curve."""
    ours, ref, head = build_models('small')
    images, labels = make_batch(2, 32)
    ours_step = ours_step_fn(ours, images, labels, 'fp32', 'cpu', fused=True)
    hf_step = hf_step_fn(ref, head, images, labels, 'fp32', 'cpu')
    ours_losses = [ours_step() for _ in range(3)]
    hf_losses = [hf_step() for _ in range(3)]
    assert ours_losses[-1] < ours_losses[0]
    assert ours_losses == pytest.approx(hf_losses, rel=1e-3, abs=1e-4)


def test_compiled_step_starts_from_the_same_loss():
    """``--compile``: ours is compiled as the Runner does it (aot_eager:
    dynamo + AOTAutograd without inductor's C++ build) and still takes the
    reference's first step."""
    row = benchmark_train_step('small', 'fp32', batch_size=2, img_size=32,
                               rounds=1, iters=1, warmup=1, threads=1,
                               compile_backend='aot_eager')
    assert row['compile'] == 'aot_eager'
    assert row['ours_loss0'] == pytest.approx(row['hf_loss0'], abs=1e-4)
    assert '| aot_eager |' in to_markdown([row])
