"""Predictable mistakes through the tools: one line, non-zero, no traceback.

Each case runs a tool in a fresh interpreter, as a user would, and checks
the exit code, the message (the path named, what to do) and that no
traceback is printed unless ``--debug`` asks for it.
"""
import os
import shutil
import stat

import pytest
import torch
from mmengine.config import Config

from dinov3_mm.models.backbones import DINOv3ViT


def _tool(run_python, repo_root, tool, *args, **kwargs):
    return run_python(args=[repo_root / 'tools' / tool, *args], **kwargs)


def _fails_cleanly(proc, *fragments, code=None):
    assert proc.returncode != 0, proc.stdout[-2000:]
    if code is not None:
        assert proc.returncode == code, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr[-3000:]


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _usual_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@pytest.mark.parametrize('tool, args', [
    ('train.py', ['configs/nope.py']),
    ('test.py', ['configs/nope.py', 'x.pth']),
    ('infer.py', ['configs/nope.py', 'x.pth', 'img.png']),
    ('deploy.py', ['configs/nope.py', '--work-dir', 'out']),
    ('merge_lora.py', ['configs/nope.py', 'x.pth', 'out.pth']),
])
def test_missing_config(tool, args, run_python, repo_root):
    proc = _tool(run_python, repo_root, tool, *args)
    _fails_cleanly(proc, 'error: config configs/nope.py does not exist; ',
                   'configs live under configs/', code=1)
    assert [line for line in proc.stderr.splitlines()
            if 'nope.py' in line] == [proc.stderr.splitlines()[-1]]


def test_missing_config_suggests_the_shipped_one(run_python, repo_root):
    proc = _tool(run_python, repo_root, 'train.py', 'convnext_shapes.py',
                 cwd=repo_root)
    _fails_cleanly(proc, 'error: config convnext_shapes.py does not exist; '
                   'did you mean configs/demo/convnext_shapes.py?')


def test_debug_shows_the_traceback(run_python, repo_root):
    proc = _tool(run_python, repo_root, 'train.py', 'nope.py', '--debug')
    assert proc.returncode != 0
    assert 'Traceback' in proc.stderr and 'UserError' in proc.stderr


@pytest.mark.parametrize('tool, args', [
    ('test.py', ['{config}', 'nope.pth']),
    ('train.py', ['{config}', '--resume', 'nope.pth']),
    ('infer.py', ['{config}', 'nope.pth', 'img.png']),
    ('deploy.py', ['{config}', 'nope.pth', '--work-dir', 'out']),
    ('convert_checkpoint.py', ['nope.pth', 'out.pth', '--to', 'hf']),
])
def test_missing_checkpoint(tool, args, tiny_config, run_python, repo_root):
    args = [a.format(config=tiny_config) for a in args]
    proc = _tool(run_python, repo_root, tool, *args)
    _fails_cleanly(proc, 'nope.pth does not exist; pass a .pth file written '
                   'by tools/train.py', code=1)
    assert 'error: checkpoint ' in proc.stderr
    if '--resume' in args:
        assert 'checkpoint --resume nope.pth' in proc.stderr


def _write_config(path, model_cfg):
    Config(dict(default_scope='dinov3_mm', model=model_cfg)).dump(str(path))
    return path


def test_merge_lora_without_lora(tmp_path, run_python, repo_root,
                                 lora_checkpoint):
    model_cfg = dict(lora_checkpoint['model_cfg'])
    model_cfg.pop('lora')
    config = _write_config(tmp_path / 'plain_cfg.py', model_cfg)
    proc = _tool(run_python, repo_root, 'merge_lora.py', config,
                 lora_checkpoint['checkpoint'], tmp_path / 'out.pth')
    _fails_cleanly(
        proc, f'error: config {config} has no LoRA adapters (model.lora is '
        'not set); nothing to merge: use the checkpoint as it is.')
    assert not (tmp_path / 'out.pth').exists()


def test_merged_checkpoint_has_the_usual_mode(tmp_path, run_python,
                                              repo_root, lora_checkpoint):
    config = _write_config(tmp_path / 'lora_cfg.py',
                           lora_checkpoint['model_cfg'])
    out = tmp_path / 'merged.pth'
    proc = _tool(run_python, repo_root, 'merge_lora.py', config,
                 lora_checkpoint['checkpoint'], out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '--cfg-options model.lora=None' in proc.stdout
    assert _mode(out) == _usual_mode()


def test_convert_refuses_unmerged_lora(tmp_path, run_python, repo_root,
                                       lora_checkpoint):
    proc = _tool(run_python, repo_root, 'convert_checkpoint.py',
                 lora_checkpoint['checkpoint'], tmp_path / 'out', '--to',
                 'hf')
    _fails_cleanly(proc, 'holds unmerged LoRA adapters',
                   'python tools/merge_lora.py CONFIG CKPT OUT`, then '
                   'convert OUT')
    assert not (tmp_path / 'out').exists()


def test_converted_hf_folder_has_the_usual_mode(tmp_path, run_python,
                                                repo_root):
    torch.manual_seed(0)
    src = tmp_path / 'official.pth'
    torch.save(DINOv3ViT(arch=dict(embed_dims=48, num_layers=1,
                                   num_heads=3)).state_dict(), src)
    proc = _tool(run_python, repo_root, 'convert_checkpoint.py', src,
                 tmp_path / 'hf', '--to', 'hf')
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / 'hf').iterdir())
    assert files == ['config.json', 'model.safetensors']
    for name in files:
        assert _mode(tmp_path / 'hf' / name) == _usual_mode()


# Empty class folders through tools/train.py ---------------------------------
def _folder_config(tmp_path, shrink_config, repo_root):
    from dinov3_mm.datasets.synthetic import write_shape_dataset
    data = tmp_path / 'shapes'
    write_shape_dataset(str(data), num_per_class=2, size=32)
    cfg = Config.fromfile(str(
        repo_root / 'configs/classification/vits16_linear_probe_shapes.py'))
    cfg = shrink_config(cfg, data, batch_size=2, img_size=32)
    cfg.model.backbone.arch = dict(embed_dims=48, num_layers=1, num_heads=3)
    cfg.model.backbone.frozen_stages = 1
    cfg.model.backbone.pop('init_cfg', None)
    cfg.model.head.in_channels = 96
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.work_dir = str(tmp_path / 'work')
    path = tmp_path / 'folder_cfg.py'
    cfg.dump(str(path))
    return path, data


def _empty(folder):
    shutil.rmtree(folder)
    folder.mkdir()


def test_class_empty_in_one_split_trains(tmp_path, shrink_config,
                                         run_python, repo_root):
    config, data = _folder_config(tmp_path, shrink_config, repo_root)
    _empty(data / 'val' / 'square')
    proc = _tool(run_python, repo_root, 'train.py', config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'without images in their split' in log
    assert 'keep their index' in log
    assert (tmp_path / 'work' / 'epoch_1.pth').exists()


def test_class_without_any_image_says_where_the_flag_goes(
        tmp_path, shrink_config, run_python, repo_root):
    config, data = _folder_config(tmp_path, shrink_config, repo_root)
    for split in ('train', 'val', 'test'):
        _empty(data / split / 'square')
    proc = _tool(run_python, repo_root, 'train.py', config)
    _fails_cleanly(
        proc, 'class folder(s) without images', 'set skip_empty_classes=True '
        f'in every dataset that reads {data}',
        'train_dataloader.dataset, val_dataloader.dataset and '
        'test_dataloader.dataset alike')
    for split in ('train', 'val', 'test'):
        assert str(data / split / 'square') in proc.stderr
