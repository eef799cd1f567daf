"""tools/validate_dataset.py: report and exit codes."""
import importlib.util
import json

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope='module')
def tool(repo_root):
    """The tool's module, imported in-process (its ``main`` returns codes)."""
    spec = importlib.util.spec_from_file_location(
        'validate_dataset_tool', repo_root / 'tools' / 'validate_dataset.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _folder(root, counts):
    rng = np.random.default_rng(0)
    for name, num in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(num):
            data = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(data).save(root / name / f'{i}.png')
    return root


def test_subprocess_failing_rule_exits_one(run_python, repo_root, tmp_path):
    root = _folder(tmp_path / 'd', dict(a=3, b=4))
    (root / 'a' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    proc = run_python(args=[repo_root / 'tools' / 'validate_dataset.py',
                            root])
    assert proc.returncode == 1, proc.stderr
    assert '[FAIL] unreadable' in proc.stdout and 'broken.jpg' in proc.stdout
    assert 'FAILED (unreadable)' in proc.stdout


def test_clean_dataset_exits_zero(tool, tmp_path, capsys):
    root = _folder(tmp_path / 'd', dict(a=3, b=4))
    out = tmp_path / 'report.json'
    assert tool.main([str(root), '--json', str(out)]) == 0
    assert 'Result: PASSED' in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report['passed'] and report['counts'] == {'all': dict(a=3, b=4)}


def test_fail_on_and_thresholds(tool, tmp_path, capsys):
    root = _folder(tmp_path / 'd', dict(a=3, b=4))
    assert tool.main([str(root), '--fail-on', 'none', '--min-size',
                      '64']) == 0
    assert '[warn] too_small' in capsys.readouterr().out
    assert tool.main([str(root), '--fail-on', 'too_small', '--min-size',
                      '64']) == 1
    assert 'FAILED (too_small)' in capsys.readouterr().out
    assert tool.main([str(root), '--max-imbalance', '1.1']) == 1
    assert 'FAILED (imbalance)' in capsys.readouterr().out


def test_bad_annotations_exit_two(tool, tmp_path, capsys):
    (tmp_path / 'a.csv').write_text('path,label\nx.png\n')
    assert tool.main([str(tmp_path / 'a.csv')]) == 2
    assert 'a.csv, line 2' in capsys.readouterr().err
    assert tool.main([str(tmp_path / 'a.csv'), '--fail-on', 'bogus']) == 2
