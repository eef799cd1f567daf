"""The distillation step benchmark times both steps and reports their ratio."""
from argparse import Namespace

from benchmarks.distill_step import benchmark_distill_step


def test_distill_benchmark_row():
    tiny = dict(embed_dims=48, num_layers=2, num_heads=3)
    args = Namespace(teacher=dict(tiny, embed_dims=96, num_heads=6),
                     student=tiny, dtype='fp32', batch_size=2, size=32,
                     local_crops=2, local_size=16, prototypes=64, rounds=1,
                     iters=1, threads=None)
    row = benchmark_distill_step(args)
    assert row['distill_img_s'] > 0 and row['ssl_img_s'] > 0
    ratio = row['distill_img_s'] / row['ssl_img_s']
    assert abs(row['ssl_over_distill_time'] - ratio) < 0.05 * ratio + 0.01
    assert row['ssl_crops'] == '2x32 + 2x16'
