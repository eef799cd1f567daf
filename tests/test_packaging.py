"""Packaging that coexists with OpenMMLab installs (full mmcv with ops)."""
import runpy
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _setup_module() -> dict:
    return runpy.run_path(str(REPO / 'setup.py'), run_name='setup_module')


def test_mmcv_is_chosen_by_the_installer_not_required():
    setup = _setup_module()
    runtime = setup['parse_requirements']('runtime')
    extras = setup['get_extras']()
    assert not [r for r in runtime if r.startswith('mmcv')], runtime
    assert extras['lite'] == ['mmcv-lite>=2.1.0,<2.2.0']
    for name in ('all', 'dev'):
        assert not [r for r in extras[name] if r.startswith('mmcv')], name


def test_pip_reports_no_conflict_for_dinov3_mm():
    """The test environment has the full mmcv (make test builds it): pip
    must not miss mmcv-lite or anything else dinov3_mm asks for."""
    proc = subprocess.run([sys.executable, '-m', 'pip', 'check'],
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stdout.splitlines()
             if line.lower().startswith(('dinov3-mm', 'dinov3_mm'))]
    assert not lines, proc.stdout


def test_import_without_mmcv_says_what_to_install(run_python, tmp_path):
    blocker = tmp_path / 'sitecustomize.py'
    blocker.write_text(
        'import sys\n'
        'class _NoMmcv:\n'
        '    def find_spec(self, name, path=None, target=None):\n'
        "        if name == 'mmcv' or name.startswith('mmcv.'):\n"
        "            raise ImportError('mmcv hidden by the test')\n"
        'sys.meta_path.insert(0, _NoMmcv())\n')
    proc = run_python('import dinov3_mm', extra_paths=[tmp_path])
    assert proc.returncode == 1
    assert "dinov3_mm needs mmcv 2.1" in proc.stderr
    assert "pip install 'mmcv-lite>=2.1,<2.2'" in proc.stderr
