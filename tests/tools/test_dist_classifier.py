"""tools/dist_train.sh trains one DINOv3 classifier on 2 CPU processes (gloo)."""
import os
import socket
import subprocess
import sys
import textwrap

import torch
from mmengine.config import Config

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset

HOOK_MODULE = textwrap.dedent("""
    import os
    import torch
    from mmengine.hooks import Hook
    from mmengine.dist import get_rank
    from dinov3_mm.registry import HOOKS

    @HOOKS.register_module()
    class DumpRankWeights(Hook):
        def after_train(self, runner):
            model = runner.model.module if hasattr(runner.model, 'module') \\
                else runner.model
            state = {k: v.detach().cpu() for k, v in
                     model.state_dict().items()}
            torch.save(state, os.path.join(runner.work_dir,
                                           f'rank{get_rank()}.pth'))
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_ranks_train_one_classifier(repo_root, tmp_path, shrink_config):
    data = write_shape_dataset(str(tmp_path / 'shapes'), num_per_class=4,
                               size=32)
    (tmp_path / 'rank_hook.py').write_text(HOOK_MODULE)
    cfg = shrink_config(
        Config.fromfile(str(repo_root / 'configs/demo/convnext_shapes.py')),
        data, batch_size=3)
    cfg.train_cfg.max_epochs = 2
    cfg.default_hooks.checkpoint.interval = 1
    cfg.custom_imports = dict(imports=['rank_hook'])
    cfg.custom_hooks = [dict(type='DumpRankWeights')]
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    work_dir = tmp_path / 'work'
    env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable,
               OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(repo_root)]))
    proc = subprocess.run(
        ['bash', str(repo_root / 'tools' / 'dist_train.sh'), str(cfg_path),
         '2', '--work-dir', str(work_dir)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    rank0 = torch.load(work_dir / 'rank0.pth', weights_only=True)
    rank1 = torch.load(work_dir / 'rank1.pth', weights_only=True)
    after_epoch1 = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key  # one model on both ranks
    head_key = 'head.fc.weight' if 'head.fc.weight' in rank0 else next(
        k for k in rank0 if k.startswith('head.') and k.endswith('weight'))
    assert not torch.equal(rank0[head_key],
                           after_epoch1['state_dict'][head_key])  # trained on
    # 12 images, 3 per process and step, 2 processes: 2 steps per epoch
    assert torch.load(work_dir / 'epoch_2.pth',
                      weights_only=True)['meta']['iter'] == 4
