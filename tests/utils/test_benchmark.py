"""The backbone benchmark runs both models on identical weights."""
from dinov3_mm.utils.benchmark import benchmark_vit_vs_hf, to_markdown


def test_benchmark_row_and_table():
    row = benchmark_vit_vs_hf('small', 'bf16', batch_size=1, img_size=32,
                              rounds=1, iters=1, measure_memory=False)
    assert row['arch'] == 'small' and row['dtype'] == 'bf16'
    assert row['ours_img_s'] > 0 and row['hf_img_s'] > 0
    assert abs(row['speedup'] - row['ours_img_s'] / row['hf_img_s']) < 0.05
    table = to_markdown([row])
    assert table.splitlines()[0].startswith('| arch | dtype')
    assert '| small | bf16 | cpu | 1 | 32 |' in table


def test_deploy_block_rates_visit_every_runner_in_blocks():
    from dinov3_mm.utils.benchmark_deploy import _block_rates
    calls = []
    runners = {name: (lambda name=name: calls.append(name))
               for name in ('eager', 'ort')}
    rates = _block_rates(runners, batch=4, rounds=2, calls=3, pause=0)
    # each round: one untimed and three timed calls per runner, in blocks
    assert calls == (['eager'] * 4 + ['ort'] * 4) * 2
    assert set(rates) == {'eager', 'ort'}
    assert all(r > 0 for r in rates.values())
