"""tools/dist_train.sh --fsdp: sharded training on 2 CPU processes (gloo).

The sharded run must compute what one process computes on the same batches
(2 ranks x 3 images = 1 process x 6 images, no random augmentation), save
sharded checkpoints, resume from its own shards, and merge back into one
file that the other tools read.
"""
import os
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.utils.checkpoint_io import CheckpointError, load_weights_only
from dinov3_mm.utils.sharded_checkpoint import SHARD_INDEX_KEY

PIPELINE = [dict(type='LoadImage'), dict(type='ResizeKeepRatioPad', size=32),
            dict(type='PackClsInputs')]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _tiny_vit_config(repo_root, data_root, shrink_config, batch_size,
                     max_epochs):
    """The ViT-S fine-tuning recipe (layer decay, clipping, 2-step gradient
    accumulation) on a 2-block 64-d ViT, without random augmentation."""
    cfg = shrink_config(
        Config.fromfile(str(repo_root / 'configs/classification/'
                            'vits16_finetune_llrd_shapes.py')),
        data_root, batch_size=batch_size, img_size=32)
    cfg.model.backbone.update(
        arch=dict(embed_dims=64, num_layers=2, num_heads=2),
        drop_path_rate=0.0)
    cfg.model.head.in_channels = 128
    cfg.model.data_preprocessor.batch_augments = None
    cfg.train_dataloader.dataset.pipeline = PIPELINE
    cfg.train_cfg.max_epochs = max_epochs
    cfg.default_hooks.checkpoint.interval = 1
    cfg.custom_hooks = []
    return cfg


def _dist_train(repo_root, cfg_path, work_dir, *args):
    env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable,
               OMP_NUM_THREADS='1', PYTHONPATH=str(repo_root))
    proc = subprocess.run(
        ['bash', str(repo_root / 'tools' / 'dist_train.sh'), str(cfg_path),
         '2', '--work-dir', str(work_dir), *args],
        cwd=work_dir.parent, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return proc


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return write_shape_dataset(
        str(tmp_path_factory.mktemp('fsdp') / 'shapes'), num_per_class=4,
        size=32)


def test_sharded_training_equals_one_process_and_resumes(
        repo_root, tmp_path, shapes, shrink_config, run_tool):
    one = _tiny_vit_config(repo_root, shapes, shrink_config, 6, 2)
    one.dump(str(tmp_path / 'one.py'))
    run_tool('train.py', str(tmp_path / 'one.py'), '--work-dir',
             str(tmp_path / 'one'))
    reference = load_weights_only(str(tmp_path / 'one' / 'epoch_2.pth'))

    sharded = _tiny_vit_config(repo_root, shapes, shrink_config, 3, 1)
    sharded.dump(str(tmp_path / 'sharded.py'))
    work = tmp_path / 'sharded'
    work.mkdir()
    _dist_train(repo_root, tmp_path / 'sharded.py', work, '--fsdp')
    assert sorted(p.name for p in work.glob('epoch_1.pth*')) == [
        'epoch_1.pth', 'epoch_1.pth.shard0-of-2', 'epoch_1.pth.shard1-of-2']
    index = load_weights_only(str(work / 'epoch_1.pth'), merge=False)
    assert 'state_dict' not in index
    assert index[SHARD_INDEX_KEY]['world_size'] == 2
    shard = load_weights_only(str(work / 'epoch_1.pth.shard1-of-2'))
    qkv = 'backbone.blocks.0.attn.qkv.weight'
    assert shard['state_dict'][qkv].shape == (96, 64)  # half of 192 rows

    # resume from the rank's own shards (weights, AdamW moments, schedule)
    _dist_train(repo_root, tmp_path / 'sharded.py', work, '--fsdp',
                '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    merged = load_weights_only(str(work / 'epoch_2.pth'))
    assert merged['meta']['iter'] == reference['meta']['iter'] == 4
    assert merged['state_dict'].keys() == reference['state_dict'].keys()
    for key, value in reference['state_dict'].items():
        torch.testing.assert_close(merged['state_dict'][key], value,
                                   rtol=1e-4, atol=1e-5, msg=key)
    for pid, state in reference['optimizer']['state'].items():
        torch.testing.assert_close(
            merged['optimizer']['state'][pid]['exp_avg_sq'],
            state['exp_avg_sq'], rtol=1e-3, atol=1e-9)

    out = tmp_path / 'merged.pth'
    run_tool('convert_checkpoint.py', str(work / 'epoch_2.pth'), str(out),
             '--merge-shards')
    one_file = torch.load(out, weights_only=True)
    assert SHARD_INDEX_KEY not in one_file
    assert torch.equal(one_file['state_dict'][qkv],
                       merged['state_dict'][qkv])
    # the merged file tests like any checkpoint; so does the sharded one
    proc = run_tool('test.py', str(tmp_path / 'one.py'),
                    str(work / 'epoch_2.pth'), '--work-dir',
                    str(tmp_path / 'test'))
    assert 'accuracy/top1' in proc.stdout + proc.stderr

    (work / 'epoch_2.pth.shard1-of-2').unlink()
    with pytest.raises(CheckpointError, match='shard1-of-2 is missing'):
        load_weights_only(str(work / 'epoch_2.pth'))


def test_sharded_lora_bf16_activation_checkpointing(repo_root, tmp_path,
                                                    shapes, shrink_config):
    cfg = _tiny_vit_config(repo_root, shapes, shrink_config, 3, 2)
    cfg.model.lora = dict(r=4, alpha=8)
    cfg.model_wrapper_cfg = dict(type='FSDPWrapper',
                                 activation_checkpointing=True)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.dump(str(tmp_path / 'lora.py'))
    work = tmp_path / 'lora'
    work.mkdir()
    proc = _dist_train(repo_root, tmp_path / 'lora.py', work, '--fsdp',
                       'bf16')
    # max_keep_ckpts=1 removed epoch_1 with its shards
    assert sorted(p.name for p in work.glob('epoch_*')) == [
        'epoch_2.pth', 'epoch_2.pth.shard0-of-2', 'epoch_2.pth.shard1-of-2']
    state = load_weights_only(str(work / 'epoch_2.pth'))['state_dict']
    lora_keys = [k for k in state if 'lora_' in k]
    assert lora_keys and all(state[k].dtype == torch.float32
                             for k in lora_keys)  # fp32 master weights
    # the adapters trained (peft starts lora_B at zero)
    assert all(state[k].abs().sum() > 0 for k in lora_keys if 'lora_B' in k)
    assert 'Epoch(train)' in proc.stdout + proc.stderr
