"""tools/analysis/analyze_logs.py: curves of logged scalars, train time."""
import json

import analyze_logs
import pytest
from PIL import Image

from dinov3_mm.utils.cli import UserError


def _write_run(work_dir, times, loss0=1.0, timestamp='20250101_000000'):
    """An epoch-based mmengine scalar log: 3 logged iterations per epoch,
    a validation after each epoch."""
    vis = work_dir / timestamp / 'vis_data'
    vis.mkdir(parents=True)
    lines, it = [], 0
    for epoch, epoch_times in enumerate(times, start=1):
        for t in epoch_times:
            it += 1
            lines.append(dict(lr=0.1, data_time=0.01, loss=loss0 / it,
                              time=t, epoch=epoch, iter=it, memory=0,
                              step=it))
        lines.append(dict({'accuracy/top1': 50.0 + epoch}, data_time=0.01,
                          time=0.02, step=epoch))
    (vis / 'scalars.json').write_text(
        ''.join(json.dumps(line) + '\n' for line in lines))
    return work_dir


def test_plot_curve_of_two_runs(tmp_path, capsys):
    a = _write_run(tmp_path / 'a', [[0.3, 0.1, 0.1], [0.2, 0.1, 0.1]])
    b = _write_run(tmp_path / 'b', [[0.3, 0.2, 0.2]], loss0=2.0)
    out = tmp_path / 'plots' / 'curves.png'
    analyze_logs.main(['plot_curve', str(a), str(b), '--keys', 'loss', 'lr',
                       'accuracy/top1', '--legend', 'base', 'other',
                       '--out', str(out)])
    assert 'Wrote loss, lr, accuracy/top1 of 2 run(s)' in (
        capsys.readouterr().out)
    with Image.open(out) as im:
        assert im.format == 'PNG' and im.size[0] > 3 * 300


def test_plot_curve_errors(tmp_path):
    run = _write_run(tmp_path / 'a', [[0.1, 0.1]])
    with pytest.raises(UserError, match="'loss_x' is not logged by the run;"
                       " logged scalars: .*accuracy/top1"):
        analyze_logs.main(['plot_curve', str(run), '--keys', 'loss_x',
                           '--out', str(tmp_path / 'c.png')])
    with pytest.raises(UserError, match='2 labels for 1 runs'):
        analyze_logs.main(['plot_curve', str(run), '--legend', 'a', 'b',
                           '--out', str(tmp_path / 'c.png')])
    with pytest.raises(UserError, match='No scalar log in'):
        analyze_logs.main(['plot_curve', str(tmp_path / 'none')])


def test_cal_train_time(tmp_path, capsys):
    run = _write_run(tmp_path / 'a', [[0.9, 0.1, 0.3], [0.9, 0.2, 0.4]])
    analyze_logs.main(['cal_train_time', str(run)])
    out = capsys.readouterr().out.splitlines()
    # the first record of each epoch is left out by default
    assert out[1:] == [
        'slowest epoch 2, average time is 0.3000 s/iter',
        'fastest epoch 1, average time is 0.2000 s/iter',
        'time std over epochs is 0.0500',
        'average iter time: 0.2500 s/iter',
    ]
    analyze_logs.main(['cal_train_time', str(run), '--include-outliers'])
    assert 'average iter time: 0.4667 s/iter' in capsys.readouterr().out


def test_newest_training_log_of_a_work_dir_is_read(tmp_path, capsys):
    run = _write_run(tmp_path / 'a', [[0.5, 0.5]], timestamp='20250101_0')
    _write_run(tmp_path / 'a', [[0.5, 0.7, 0.7]], timestamp='20250102_0')
    test_log = run / '20250103_0' / 'vis_data'
    test_log.mkdir(parents=True)
    (test_log / 'scalars.json').write_text(
        json.dumps({'accuracy/top1': 60.0, 'step': 0}) + '\n')
    analyze_logs.main(['cal_train_time', str(run)])
    assert 'average iter time: 0.7000 s/iter' in capsys.readouterr().out
