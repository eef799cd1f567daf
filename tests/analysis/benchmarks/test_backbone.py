"""The backbone benchmark runs both models on identical weights."""
from benchmarks.backbone import benchmark_vit_vs_hf, to_markdown


def test_benchmark_row_and_table():
    row = benchmark_vit_vs_hf('small', 'bf16', batch_size=1, img_size=32,
                              rounds=1, iters=1, measure_memory=False)
    assert row['arch'] == 'small' and row['dtype'] == 'bf16'
    assert row['ours_img_s'] > 0 and row['hf_img_s'] > 0
    assert abs(row['speedup'] - row['ours_img_s'] / row['hf_img_s']) < 0.05
    table = to_markdown([row])
    assert table.splitlines()[0].startswith('| arch | dtype')
    assert '| small | bf16 | cpu | 1 | 32 |' in table

