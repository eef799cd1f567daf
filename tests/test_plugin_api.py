"""The domain plugins use only dinov3_mm's public API.

What a plugin may import is what the public packages list in ``__all__``
(docs/architecture.md, "Plugins"): ``from dinov3_mm.<public package> import
<name in its __all__>``. Deeper modules may change without notice; this test
fails when a plugin (package or tool) reaches into one.
"""
import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = (
    'dinov3_mm.registry', 'dinov3_mm.structures', 'dinov3_mm.utils',
    'dinov3_mm.models', 'dinov3_mm.models.losses', 'dinov3_mm.datasets',
    'dinov3_mm.datasets.transforms', 'dinov3_mm.evaluation',
    'dinov3_mm.evaluation.functional', 'dinov3_mm.engine',
    'dinov3_mm.visualization', 'dinov3_mm.apis', 'dinov3_mm.deploy')
PLUGIN_SOURCES = sorted(
    path for pattern in ('projects/*/dinov3_mm_*/**/*.py',
                         'projects/*/tools/*.py')
    for path in REPO.glob(pattern))


def _dinov3_mm_imports(path: Path):
    """``(line, module, names)`` of every dinov3_mm import in a file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (
                node.module or '').split('.')[0] == 'dinov3_mm':
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('dinov3_mm.'):
                    yield node.lineno, alias.name, []


def test_public_packages_declare_their_api():
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        assert isinstance(getattr(module, '__all__', None), (list, tuple)), \
            f'{name} has no __all__'
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f'{name}.__all__ names missing objects {missing}'


@pytest.mark.parametrize('path', PLUGIN_SOURCES,
                         ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_import_only_the_public_api(path):
    problems = []
    for line, module, names in _dinov3_mm_imports(path):
        if module not in PUBLIC_MODULES:
            problems.append(f'line {line}: {module} is not a public package')
            continue
        public = importlib.import_module(module).__all__
        problems += [f'line {line}: {module}.{n} is not in its __all__'
                     for n in names if n not in public]
    assert not problems, '\n'.join(problems)


def test_the_check_sees_plugin_sources():
    names = {p.parent.name for p in PLUGIN_SOURCES}
    assert {'dinov3_mm_medical', 'dinov3_mm_satellite',
            'dinov3_mm_industrial', 'tools'} <= names
