"""The SSL step benchmark runs both steps and reports consistent numbers."""
from benchmarks.ssl_step import benchmark_ssl_step, ssl_rows_to_markdown


def test_ssl_benchmark_row():
    arch = dict(embed_dims=48, num_layers=2, num_heads=3)
    row = benchmark_ssl_step(arch, 'bf16', batch_size=2, n_local=2,
                             global_size=32, local_size=16, out_dim=64,
                             rounds=1, iters=1)
    assert row['ssl_img_s'] > 0 and row['supervised_img_s'] > 0
    ratio = row['supervised_img_s'] / row['ssl_img_s']
    assert abs(row['ssl_over_supervised_time'] - ratio) < 0.05 * ratio + 0.01
    assert row['crops'] == '2x32 + 2x16'
    assert '| bf16 | 2 | 2x32 + 2x16 | 64 |' in ssl_rows_to_markdown([row])
