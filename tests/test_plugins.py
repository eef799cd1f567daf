"""Plugin discovery through the ``dinov3_mm.plugins`` entry-point group.

The example plugin (``projects/example_plugin``) is really pip-installed into
a temporary folder; each check runs in a fresh interpreter whose
``PYTHONPATH`` holds that folder, so entry points are found exactly as for an
installed package and the test process's registries stay untouched.
"""
import shutil
import subprocess
import sys
import textwrap

import pytest

BUILD_HEAD = textwrap.dedent("""
    import sys
    import torch
    from dinov3_mm.registry import MODELS
    head = MODELS.build(
        dict(type='ExampleLinearHead', in_channels=8, num_classes=3))
    logits = head((torch.randn(2, 8, 4, 4), ))
    print('SHAPE', tuple(logits.shape))
    print('MODULE', type(head).__module__)
    logits.sum().backward()
    print('GRAD', head.fc.weight.grad is not None)
    """)


@pytest.fixture(scope='module')
def example_plugin_target(tmp_path_factory, repo_root):
    """``pip install --target`` of projects/example_plugin; the folder."""
    work = tmp_path_factory.mktemp('example_plugin')
    src = work / 'src'
    # Build from a copy so the source tree gets no build/ or egg-info.
    shutil.copytree(
        repo_root / 'projects' / 'example_plugin',
        src,
        ignore=shutil.ignore_patterns('build', '*.egg-info', '__pycache__'))
    target = work / 'site'
    proc = subprocess.run(
        [
            sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
            '--no-build-isolation', '--no-cache-dir',
            '--disable-pip-version-check', '--quiet', '--target',
            str(target), str(src)
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry_points = list(target.glob('*.dist-info/entry_points.txt'))
    assert len(entry_points) == 1
    assert '[dinov3_mm.plugins]' in entry_points[0].read_text()
    return target


def test_plugin_discovered_through_entry_point(example_plugin_target,
                                               run_python):
    proc = run_python(BUILD_HEAD, extra_paths=[example_plugin_target])
    assert proc.returncode == 0, proc.stderr
    assert 'SHAPE (2, 3)' in proc.stdout
    assert 'MODULE dinov3_mm_example_plugin.heads' in proc.stdout
    assert 'GRAD True' in proc.stdout


def test_discover_and_load_plugins(example_plugin_target, run_python):
    code = textwrap.dedent("""
        from dinov3_mm.plugins import discover_plugins, load_plugins
        for ep in discover_plugins():
            print('EP', ep.name, ep.value, ep.dist.name)
        loaded, again = load_plugins(), load_plugins()
        print('LOADED', {'example': loaded.get('example')})
        print('AGAIN', {'example': again.get('example')}, again == loaded)
        """)
    proc = run_python(code, extra_paths=[example_plugin_target])
    assert proc.returncode == 0, proc.stderr
    assert ('EP example dinov3_mm_example_plugin dinov3_mm_example_plugin'
            in proc.stdout)
    assert "LOADED {'example': 'dinov3_mm_example_plugin'}" in proc.stdout
    # other installed plugins (the domain projects) may be loaded too
    assert ("AGAIN {'example': 'dinov3_mm_example_plugin'} True"
            in proc.stdout)


def test_config_uses_plugin_without_custom_imports(example_plugin_target,
                                                   run_python, tmp_path):
    cfg = tmp_path / 'plugin_cfg.py'
    cfg.write_text("default_scope = 'dinov3_mm'\n"
                   "head = dict(type='ExampleLinearHead', in_channels=4, "
                   'num_classes=2)\n')
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.registry import MODELS, init_default_scope
        cfg = Config.fromfile({str(cfg)!r})
        init_default_scope(cfg.default_scope)
        head = MODELS.build(cfg.head)  # mmengine's root, as the Runner does
        print('BUILT', type(head).__name__, head.fc.out_features)
        """)
    proc = run_python(code, extra_paths=[example_plugin_target])
    assert proc.returncode == 0, proc.stderr
    assert 'BUILT ExampleLinearHead 2' in proc.stdout


def test_env_var_disables_plugins(example_plugin_target, run_python):
    code = textwrap.dedent("""
        import sys
        from dinov3_mm.plugins import load_plugins
        from dinov3_mm.registry import MODELS
        print('LOADED', load_plugins())
        try:
            MODELS.build(
                dict(type='ExampleLinearHead', in_channels=8, num_classes=3))
        except KeyError as exc:
            print('KEYERROR', exc)
        else:
            print('BUILT')
        print('IMPORTED', 'dinov3_mm_example_plugin' in sys.modules)
        """)
    proc = run_python(
        code,
        extra_paths=[example_plugin_target],
        env={'DINOV3_MM_NO_PLUGINS': '1'})
    assert proc.returncode == 0, proc.stderr
    assert 'LOADED {}' in proc.stdout
    assert 'KEYERROR' in proc.stdout and 'ExampleLinearHead' in proc.stdout
    assert 'IMPORTED False' in proc.stdout


def _fake_distribution(site, dist_name, entry_points, modules):
    """Write an installed-distribution fixture: dist-info plus modules."""
    info = site / f'{dist_name.replace("-", "_")}-1.0.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(
        f'Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n')
    lines = ['[dinov3_mm.plugins]'] + [f'{k} = {v}' for k, v in entry_points]
    (info / 'entry_points.txt').write_text('\n'.join(lines) + '\n')
    for name, source in modules.items():
        (site / f'{name}.py').write_text(textwrap.dedent(source))


def test_broken_plugin_raises_plugin_import_error(tmp_path, run_python):
    site = tmp_path / 'site'
    _fake_distribution(
        site, 'broken-probe-plugin', [('broken', 'broken_probe_module')], {
            'broken_probe_module':
            "raise RuntimeError('boom from broken_probe_module')\n"
        })
    code = textwrap.dedent("""
        from dinov3_mm.plugins import PluginImportError
        from dinov3_mm.registry import MODELS
        try:
            MODELS.build(dict(type='BaseDataPreprocessor'))
        except PluginImportError as exc:
            print('PLUGINERROR', exc)
            print('CAUSE', type(exc.__cause__).__name__)
        else:
            print('BUILT')
        """)
    proc = run_python(code, extra_paths=[site])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'PLUGINERROR' in out, out
    assert "'broken'" in out  # the entry point
    assert 'broken-probe-plugin' in out  # the distribution
    assert 'broken_probe_module' in out and 'boom' in out
    assert 'DINOV3_MM_NO_PLUGINS=1' in out  # how to get going again
    assert 'CAUSE RuntimeError' in out

    # The opt-out skips the broken plugin.
    proc = run_python(code, extra_paths=[site],
                      env={'DINOV3_MM_NO_PLUGINS': '1'})
    assert proc.returncode == 0, proc.stderr
    assert 'BUILT' in proc.stdout


def test_entry_point_with_attribute_value(tmp_path, run_python):
    site = tmp_path / 'site'
    _fake_distribution(
        site, 'attr-probe-plugin', [('attr', 'attr_probe_module:register')], {
            'attr_probe_module':
            """
            from torch import nn
            from dinov3_mm.registry import MODELS


            @MODELS.register_module()
            class AttrProbeNet(nn.Module):
                pass


            def register():
                pass
            """
        })
    code = textwrap.dedent("""
        from dinov3_mm.registry import MODELS
        print('BUILT', type(MODELS.build(dict(type='AttrProbeNet'))).__name__)
        """)
    proc = run_python(code, extra_paths=[site])
    assert proc.returncode == 0, proc.stderr
    assert 'BUILT AttrProbeNet' in proc.stdout
