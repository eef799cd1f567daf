"""The compute floor counts every matrix product of a step, attention on the
CPU included, and turns it into a bound on the reference's speed-up."""
import pytest
import torch
import torch.nn.functional as F

from benchmarks.compute_floor import count_step_flops, matmul_peak_flops
from benchmarks.backbone import benchmark_vit_vs_hf
from benchmarks.backbone import to_markdown as backbone_markdown
from benchmarks.train_step import benchmark_train_step, to_markdown


def test_linear_forward_and_backward_flops():
    x = torch.randn(8, 16, requires_grad=True)
    weight = torch.randn(32, 16, requires_grad=True)

    def step():
        F.linear(x, weight).sum().backward()

    # forward, input gradient and weight gradient: 2 * 8 * 16 * 32 each
    assert count_step_flops(step) == 3 * 2 * 8 * 16 * 32


def test_cpu_attention_forward_and_backward_are_counted():
    b, h, s, d = 2, 3, 10, 8
    q, k, v = (torch.randn(b, h, s, d, requires_grad=True) for _ in range(3))

    def forward():
        return F.scaled_dot_product_attention(q, k, v)

    with torch.no_grad():
        forward_flops = count_step_flops(forward)
    # q @ k^T and softmax(.) @ v: two products of 2 * b*h*s*s*d FLOPs
    assert forward_flops == 2 * (2 * b * h * s * s * d)
    # the backward of the CPU kernel recomputes q @ k^T and takes four
    # gradient products (torch's own formula): 2.5x the forward
    total = count_step_flops(lambda: forward().sum().backward())
    assert total == forward_flops + 5 * (2 * b * h * s * s * d)


def test_matmul_peak_is_a_rate():
    assert matmul_peak_flops('cpu', repeats=1) > 1e8


def test_train_step_row_reports_the_floor():
    row = benchmark_train_step('small', 'fp32', batch_size=2, img_size=32,
                               rounds=1, iters=1, warmup=1, threads=1,
                               floor=True)
    assert row['step_gflop'] > 0 and row['gemm_gflop_s'] > 0
    # the floor is the step's FLOPs at the peak rate, in images per second
    assert row['floor_img_s'] == pytest.approx(
        2 * row['gemm_gflop_s'] / row['step_gflop'], rel=0.02)
    assert row['max_speedup'] == pytest.approx(
        row['floor_img_s'] / row['hf_img_s'], rel=0.02)
    assert '| max_speedup |' in to_markdown([row])


def test_rows_without_the_floor_keep_the_short_table():
    row = dict(arch='small', speedup=1.0)
    assert 'max_speedup' not in to_markdown([row])


@pytest.mark.parametrize('groups', [1, 4])
def test_convolution_backward_costs_two_forwards(groups):
    """Input and weight gradient each cost the forward's FLOPs, grouped
    (depthwise) convolutions included."""
    x = torch.randn(2, 8, 9, 9, requires_grad=True)
    weight = torch.randn(8, 8 // groups, 3, 3, requires_grad=True)

    def forward():
        return F.conv2d(x, weight, padding=1, groups=groups)

    with torch.no_grad():
        forward_flops = count_step_flops(forward)
    assert forward_flops == 2 * (2 * 8 * 9 * 9) * (8 // groups) * 3 * 3
    assert count_step_flops(
        lambda: forward().sum().backward()) == 3 * forward_flops


def test_backbone_row_reports_the_floor_of_a_forward_pass():
    row = benchmark_vit_vs_hf('small', 'fp32', batch_size=2, img_size=32,
                              rounds=1, iters=1, threads=1,
                              measure_memory=False, floor=True)
    # a forward pass only: about a third of the training step's FLOPs
    step = benchmark_train_step('small', 'fp32', batch_size=2, img_size=32,
                                rounds=1, iters=1, warmup=1, threads=1,
                                floor=True)
    assert row['step_gflop'] == pytest.approx(step['step_gflop'] / 3,
                                              rel=0.1)
    assert row['max_speedup'] == pytest.approx(
        row['floor_img_s'] / row['hf_img_s'], rel=0.02)
    assert '| floor_img_s |' in backbone_markdown([row])


def test_train_step_script_prints_the_floor_columns(repo_root, run_python):
    proc = run_python(args=[
        'tools/analysis/benchmark_train_step.py', '--archs', 'small',
        '--dtypes', 'fp32', '--batch-size', '2', '--img-size', '32',
        '--rounds', '1', '--iters', '1', '--warmup', '1', '--threads', '1',
        '--floor', '--markdown'
    ], cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0]
    assert header.endswith(
        '| step_gflop | gemm_gflop_s | floor_img_s | max_speedup |'), header
