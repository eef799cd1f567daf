"""tools/test_ood.py end to end: report files, the deployable threshold and
what it refuses."""
import importlib.util
import json
import shutil

import pytest

from dinov3_mm.deploy.deployment import check_ood_threshold


def test_tool_writes_the_report_and_a_threshold_deploy_reads(
        models, run_tool, tmp_path):
    cls = models['cls']
    ood = tmp_path / 'other_images'
    ood.mkdir()
    for path in cls['odd_images']:  # a 70x40 JPEG and an RGBA PNG
        shutil.copy(path, ood)
    work = tmp_path / 'report'
    proc = run_tool('test_ood.py', cls['config'], cls['checkpoint'], '--ood',
                    ood, '--scores', 'msp', 'max_logit', 'energy',
                    '--num-workers', '0', '--work-dir', work,
                    '--write-threshold', 'msp')
    assert f'{ood}: 2 OOD images vs 6 in-distribution' in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()
            if line.startswith('  ')]
    assert [r[0] for r in rows] == ['msp', 'max_logit', 'energy']
    results = json.loads((work / 'ood_results.json').read_text())
    metrics = results['ood'][str(ood)]['metrics']
    assert float(rows[0][2]) == pytest.approx(metrics['msp']['auroc'],
                                              abs=0.01)
    for score in ('msp', 'max_logit', 'energy'):
        assert (work / f'ood_hist_{score}.png').is_file()
    # logit scores alone need no training split (the fixture has none)
    assert results['num_train'] == 0

    threshold = json.loads((work / 'ood_threshold.json').read_text())
    assert threshold['score'] == 'msp' and threshold['tpr'] == 0.95
    assert threshold['threshold'] == results['thresholds']['msp']
    assert check_ood_threshold(threshold) == dict(
        score='msp', threshold=threshold['threshold'])


@pytest.fixture(scope='module')
def tool(repo_root):
    """The tool's module, imported in-process."""
    spec = importlib.util.spec_from_file_location(
        'test_ood_tool', repo_root / 'tools' / 'test_ood.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_refuses_a_segmentor_and_unservable_thresholds(
        models, tool, tmp_path, capsys):
    seg = models['seg']
    with pytest.raises(ValueError, match='without a classification head'):
        tool.main([seg['config'], seg['checkpoint'], '--ood', seg['data'],
                   '--work-dir', str(tmp_path / 'r'), '--num-workers', '0'])
    with pytest.raises(SystemExit) as exc:
        tool.parse_args([seg['config'], seg['checkpoint'], '--ood',
                         seg['data'], '--write-threshold', 'knn'])
    assert exc.value.code == 2
    assert "invalid choice: 'knn'" in capsys.readouterr().err
