"""The deploy benchmark times its runners in blocks."""
from benchmarks.deploy import _block_rates


def test_deploy_block_rates_visit_every_runner_in_blocks():
    calls = []
    runners = {name: (lambda name=name: calls.append(name))
               for name in ('eager', 'ort')}
    rates = _block_rates(runners, batch=4, rounds=2, calls=3, pause=0)
    # each round: one untimed and three timed calls per runner, in blocks
    assert calls == (['eager'] * 4 + ['ort'] * 4) * 2
    assert set(rates) == {'eager', 'ort'}
    assert all(r > 0 for r in rates.values())
