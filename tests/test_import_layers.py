"""The layer contract (.importlinter) holds: imports run one way.

``lint-imports`` (import-linter) builds the import graph of dinov3_mm and the
domain plugins and checks the contracts in ``.importlinter``; see
docs/architecture.md for the layers.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint_imports(config: Path) -> subprocess.CompletedProcess:
    exe = shutil.which('lint-imports', path=str(Path(sys.executable).parent))
    assert exe, 'import-linter is missing: pip install -e ".[dev]"'
    return subprocess.run([exe, str(config), '--no-cache'],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_layer_contract_is_kept():
    proc = _lint_imports(REPO / '.importlinter')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert '0 broken' in proc.stdout
    for name in ('library-layers', 'plugins-on-top', 'medical-io',
                 'utils-standalone', 'backbone-formats'):
        assert f'[importlinter:contract:{name}]' in (
            REPO / '.importlinter').read_text()


@pytest.mark.parametrize('upper,lower', [
    ('dinov3_mm.apis', 'dinov3_mm.deploy'),  # deploy builds on apis
])
def test_an_upward_import_breaks_the_contract(tmp_path, upper, lower):
    """The same tool on a contract that inverts two real layers reports it
    broken: the check sees the actual imports."""
    config = tmp_path / 'inverted.ini'
    config.write_text(
        '[importlinter]\nroot_packages =\n    dinov3_mm\n'
        '[importlinter:contract:inverted]\nname = inverted\ntype = layers\n'
        f'layers =\n    {upper}\n    {lower}\n')
    proc = _lint_imports(config)
    assert proc.returncode == 1
    assert f'{lower} is not allowed to import {upper}' in proc.stdout
