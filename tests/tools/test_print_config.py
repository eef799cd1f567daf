"""tools/misc/print_config.py prints the merged config."""
from mmengine.config import Config


def test_print_config_merges_bases_options_and_scope(run_python, repo_root,
                                                     tmp_path):
    out = tmp_path / 'merged.py'
    proc = run_python(args=[
        repo_root / 'tools/misc/print_config.py',
        repo_root / 'configs/demo/convnext_shapes.py', '--cfg-options',
        'train_cfg.max_epochs=7', '--out', out
    ])
    assert proc.returncode == 0, proc.stderr
    assert 'max_epochs=7' in proc.stdout
    assert "default_scope = 'dinov3_mm'" in proc.stdout
    assert "type='ImageFolderDataset'" in proc.stdout  # from _base_
    merged = Config.fromfile(str(out))
    assert merged.train_cfg.max_epochs == 7
    assert merged.default_scope == 'dinov3_mm'


def test_print_config_sets_default_scope(run_python, repo_root, tmp_path):
    cfg = tmp_path / 'no_scope.py'
    cfg.write_text("model = dict(type='DINOv3Classifier')\n")
    proc = run_python(args=[repo_root / 'tools/misc/print_config.py', cfg])
    assert proc.returncode == 0, proc.stderr
    assert "default_scope = 'dinov3_mm'" in proc.stdout


def test_print_config_missing_file(run_python, repo_root, tmp_path):
    proc = run_python(args=[repo_root / 'tools/misc/print_config.py',
                            tmp_path / 'nope.py'])
    assert proc.returncode == 1
    assert 'nope.py does not exist' in proc.stderr
    assert 'Traceback' not in proc.stderr
