"""tools/train.py and tools/test.py on a tiny config, in subprocesses."""
import pytest
import torch

import dinov3_mm  # noqa: F401  (torch.load of mmengine checkpoints)


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_train_one_epoch_then_resume(tiny_config, tmp_path, run_tool):
    work_dir = tmp_path / 'work'
    run_tool('train.py', tiny_config, '--work-dir', work_dir)
    ckpt = _load(work_dir / 'epoch_1.pth')
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 2
    dumped = (work_dir / 'tiny_config.py').read_text()
    assert "default_scope = 'dinov3_mm'" in dumped

    # --resume without a value: the latest checkpoint of the work dir.
    proc = run_tool('train.py', tiny_config, '--work-dir', work_dir,
                    '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 2' in log
    ckpt = _load(work_dir / 'epoch_2.pth')
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 4
    assert ckpt['message_hub']['runtime_info']['max_epochs'] == 2
    # Momentum buffers came from the first run and kept going.
    assert ckpt['optimizer']['state'], 'optimizer state missing'


def test_resume_from_explicit_checkpoint(tiny_config, tmp_path, run_tool):
    first = tmp_path / 'first'
    run_tool('train.py', tiny_config, '--work-dir', first)
    second = tmp_path / 'second'
    proc = run_tool('train.py', tiny_config, '--work-dir', second, '--resume',
                    first / 'epoch_1.pth', '--cfg-options',
                    'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1, iter: 2' in proc.stdout + proc.stderr
    assert not (second / 'epoch_1.pth').exists()
    assert _load(second / 'epoch_2.pth')['meta']['epoch'] == 2


def test_test_tool_evaluates_and_dumps(tiny_config, tmp_path, run_tool):
    work_dir = tmp_path / 'work'
    run_tool('train.py', tiny_config, '--work-dir', work_dir)
    out = tmp_path / 'preds.pkl'
    proc = run_tool('test.py', tiny_config, work_dir / 'epoch_1.pth',
                    '--work-dir', tmp_path / 'test_work', '--out', out)
    assert 'mse:' in proc.stdout + proc.stderr
    assert out.is_file()


def test_train_amp(tiny_config, tmp_path, run_tool):
    work_dir = tmp_path / 'work'
    run_tool('train.py', tiny_config, '--work-dir', work_dir, '--amp')
    dumped = (work_dir / 'tiny_config.py').read_text()
    assert "type='AmpOptimWrapper'" in dumped
    if not torch.cuda.is_available():
        assert "dtype='bfloat16'" in dumped
    assert (work_dir / 'epoch_1.pth').is_file()


def _import_tool(repo_root, name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'_dinov3_mm_tool_{name}', repo_root / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_args_are_merged_into_config(tiny_config, repo_root,
                                           monkeypatch):
    from mmengine.config import Config
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    train = _import_tool(repo_root, 'train')
    args = train.parse_args([
        str(tiny_config), '--amp', '--resume', 'ckpt.pth', '--cfg-options',
        'optim_wrapper.optimizer.lr=0.5'
    ])
    cfg = Config.fromfile(str(tiny_config), import_custom_modules=False)
    cfg = train.merge_args(cfg, args)
    assert cfg.default_scope == 'dinov3_mm'
    assert cfg.resume is True and cfg.load_from == 'ckpt.pth'
    assert cfg.work_dir.endswith('tiny_config')
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    if not torch.cuda.is_available():
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.launcher == 'none'

    args = train.parse_args([str(tiny_config), '--resume'])
    cfg = train.merge_args(
        Config.fromfile(str(tiny_config), import_custom_modules=False), args)
    assert cfg.resume is True and cfg.load_from is None


@pytest.mark.parametrize('tool, runner, extra_args', [
    ('train', 'run_or_exit', []),
    ('test', 'run_or_exit', ['CHECKPOINT']),
    ('infer', 'run', ['CHECKPOINT', 'images']),
])
def test_tools_keep_freed_memory_before_running(tool, runner, extra_args,
                                                repo_root, tmp_path,
                                                monkeypatch):
    """tools/train.py, test.py and infer.py set malloc up (README,
    `--compile` paragraph) before the runner or the model allocates
    anything."""
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    config = repo_root / 'configs/demo/convnext_shapes.py'
    checkpoint = tmp_path / 'epoch_1.pth'
    checkpoint.write_bytes(b'')
    module = _import_tool(repo_root, tool)
    calls = []
    monkeypatch.setattr(module, 'retain_freed_memory',
                        lambda: calls.append('retain_freed_memory'))
    monkeypatch.setattr(module, runner,
                        lambda *args: calls.append(runner))
    args = [str(checkpoint) if arg == 'CHECKPOINT' else arg
            for arg in extra_args]
    data = tmp_path / 'shapes'
    data.mkdir()
    options = [] if tool == 'infer' else [
        '--work-dir', str(tmp_path / 'work'), '--cfg-options', *(
            f'{split}_dataloader.dataset.data_root={data}'
            for split in ('train', 'val', 'test'))]
    module.main([str(config), *args, *options])
    assert calls == ['retain_freed_memory', runner]
