"""``tools/train.py`` end to end against a plain PyTorch loop doing the same work.

All sides run as fresh processes on the same config, data and schedule,
timed from process start to exit (imports included), in alternating order:

* ``plain``: :func:`plain_loop`, what a user writes by hand: the same
  model, dataset, pipeline and dataloader settings built from the config,
  ``torch.optim.AdamW`` (torch's default implementation) with the config's
  hyper-parameters, the config's warm-up + cosine schedule per iteration,
  gradient clipping, the epochs, one validation pass (top-1) and one
  resumable checkpoint (weights and optimizer state). No hooks, no logging.
* ``train_py``: ``tools/train.py CONFIG`` doing the same work: ``max_epochs``,
  the validation and checkpoint interval set to the run length, no
  best-checkpoint copy and no plot hooks (``custom_hooks=[]``); logging,
  timers, the visualizer and the atomic checkpoint writes stay.
* ``train_py_as_is``: ``tools/train.py CONFIG`` with the config's own extras
  on top (best checkpoint, ``ClsPlotHook`` pictures), to show what they cost.
"""
import functools
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from .common import best_of_alternating

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _loader(cfg, dataset, shuffle: bool):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    workers = cfg.get('num_workers', 0)
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=shuffle,
                      num_workers=workers, collate_fn=pseudo_collate,
                      persistent_workers=bool(workers) and cfg.get(
                          'persistent_workers', False))


def _schedule(optimizer, cfg, iters_per_epoch: int):
    """The config's LinearLR warm-up + CosineAnnealingLR, per iteration."""
    import torch
    warmup, cosine = cfg.param_scheduler
    warm_iters = (warmup.end - warmup.begin) * iters_per_epoch
    cos_iters = (cosine.end - cosine.begin) * iters_per_epoch
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=warmup.start_factor, total_iters=warm_iters),
        torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=cos_iters, eta_min=cosine.eta_min),
    ], milestones=[warm_iters])


def plain_loop(config: str, epochs: int, data_root: str, out: str) -> float:
    """Train and validate the config's model by hand; return top-1 (%)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import dinov3_mm  # noqa: F401
    from dinov3_mm.registry import DATASETS, MODELS
    cfg = Config.fromfile(config)
    init_default_scope('dinov3_mm')
    torch.manual_seed(cfg.randomness.seed)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
    model = MODELS.build(cfg.model)
    model.init_weights()
    train = _loader(cfg.train_dataloader,
                    DATASETS.build(cfg.train_dataloader.dataset), True)
    val = _loader(cfg.val_dataloader,
                  DATASETS.build(cfg.val_dataloader.dataset), False)
    opt_cfg = cfg.optim_wrapper.optimizer
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt_cfg.lr,
                                  weight_decay=opt_cfg.weight_decay)
    scheduler = _schedule(optimizer, cfg, len(train))
    max_norm = cfg.optim_wrapper.clip_grad.max_norm
    for _ in range(epochs):
        model.train()
        for batch in train:
            data = model.data_preprocessor(batch, True)
            losses = model(**data, mode='loss')
            loss = sum(v for k, v in losses.items() if 'loss' in k)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            scheduler.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in val:
            for sample in model.val_step(batch):
                correct += int(sample.pred_label == sample.gt_label)
                total += 1
    torch.save(dict(state_dict=model.state_dict(),
                    optimizer=optimizer.state_dict()), out)
    return 100.0 * correct / total


def _timed(cmd: List[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
    return seconds


VIT_CONFIG = """_base_ = [{base!r}]
model = dict(
    backbone=dict(_delete_=True, type='DINOv3ViT', arch={arch!r},
                  drop_path_rate=0.1, out_type='cls_token'),
    head=dict(in_channels={width}))
"""


def vit_variant(config: str, arch: str, folder: str) -> str:
    """``config`` with its backbone replaced by a DINOv3ViT of ``arch``."""
    from dinov3_mm.models.backbones.dinov3_vit import ARCH_ZOO
    path = os.path.join(folder, f'vit_{arch}_{os.path.basename(config)}')
    with open(path, 'w') as f:
        f.write(VIT_CONFIG.format(base=config, arch=arch,
                                  width=ARCH_ZOO[arch]['embed_dims']))
    return path


def benchmark_train_e2e(config: str, data_root: str, epochs: int,
                        rounds: int = 2,
                        vit_arch: str = None) -> Dict[str, object]:
    """Fastest wall time of each side over ``rounds`` alternating rounds.

    ``vit_arch`` swaps the config's backbone for a DINOv3ViT of that arch.
    """
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.path.join(
        REPO, 'tools', 'analysis'))
    label = os.path.relpath(config, REPO) + (f' (ViT {vit_arch})'
                                             if vit_arch else '')
    with tempfile.TemporaryDirectory() as tmp:
        if vit_arch:
            config = vit_variant(config, vit_arch, tmp)

        def train_cmd(work: str, *extra: str) -> List[str]:
            return [sys.executable, 'tools/train.py', config, '--work-dir',
                    os.path.join(tmp, work), '--cfg-options',
                    f'train_cfg.max_epochs={epochs}',
                    f'train_cfg.val_interval={epochs}',
                    f'default_hooks.checkpoint.interval={epochs}',
                    *(f'{split}_dataloader.dataset.data_root={data_root}'
                      for split in ('train', 'val', 'test')), *extra]

        commands = dict(
            train_py=train_cmd('same', 'default_hooks.checkpoint.save_best=None',
                               'custom_hooks=[]'),
            plain=[sys.executable, '-m', 'benchmarks.train_e2e', config,
                   str(epochs), data_root, os.path.join(tmp, 'plain.pth')],
            train_py_as_is=train_cmd('as_is'))
        best = best_of_alternating(
            {side: functools.partial(_timed, cmd, env)
             for side, cmd in commands.items()}, rounds)
    return dict(config=label, epochs=epochs,
                train_py_s=round(best['train_py'], 1),
                plain_s=round(best['plain'], 1),
                ratio=round(best['train_py'] / best['plain'], 3),
                as_is_s=round(best['train_py_as_is'], 1),
                as_is_ratio=round(best['train_py_as_is'] / best['plain'], 3))


if __name__ == '__main__':  # the plain side, as its own process
    top1 = plain_loop(sys.argv[1], int(sys.argv[2]), sys.argv[3],
                      sys.argv[4])
    print(f'plain loop top-1 {top1:.1f}')
