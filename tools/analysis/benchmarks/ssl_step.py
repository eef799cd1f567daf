"""Images/s of one self-supervised (DINOv3SSL) training step vs a supervised
classifier step on the same backbone, on the CPU."""
import functools
import time
from typing import Callable, Dict, List, Optional

import torch
from mmengine.registry import init_default_scope

from dinov3_mm.registry import MODELS
from dinov3_mm.utils.quiet_init import init_weights_quietly

from .common import (BENCH_DTYPES, autocast, best_of_alternating,
                     rows_to_markdown)


def _ssl_step_fn(arch: str, batch_size: int, n_local: int, global_size: int,
                 local_size: int, out_dim: int) -> Callable[[], None]:
    model = MODELS.build(dict(
        type='DINOv3SSL', backbone=dict(type='DINOv3ViT', arch=arch),
        dino_head=dict(out_dim=out_dim), gram_loss_weight=1.0))
    init_weights_quietly(model)
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-5)
    inputs = dict(
        global_crops=torch.randn(2 * batch_size, 3, global_size, global_size),
        local_crops=torch.randn(n_local * batch_size, 3, local_size,
                                local_size),
        n_global=2, n_local=n_local, batch_size=batch_size)

    def step():
        losses = model(inputs, mode='loss')
        loss = sum(v for k, v in losses.items() if k.startswith('loss_'))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.update_teacher(0.996)

    return step


def _supervised_step_fn(arch: str, batch_size: int,
                        size: int) -> Callable[[], None]:
    model = MODELS.build(dict(
        type='DINOv3Classifier',
        backbone=dict(type='DINOv3ViT', arch=arch, out_type='cls_patch_avg'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=1)))
    dims = model.backbone.embed_dims
    model.head = MODELS.build(dict(type='LinearClsHead', num_classes=10,
                                   in_channels=2 * dims))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    images = torch.randn(batch_size, 3, size, size)
    labels = torch.randint(0, 10, (batch_size, ))

    def step():
        logits = model(images, mode='tensor')
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _timed(step: Callable[[], None], iters: int,
           dtype: Optional[torch.dtype]) -> float:
    with autocast('cpu', dtype):
        start = time.perf_counter()
        for _ in range(iters):
            step()
    return (time.perf_counter() - start) / iters


def benchmark_ssl_step(arch: str = 'small',
                       dtype: str = 'fp32',
                       batch_size: int = 8,
                       n_local: int = 8,
                       global_size: int = 224,
                       local_size: int = 96,
                       out_dim: int = 65536,
                       rounds: int = 3,
                       iters: int = 2,
                       threads: Optional[int] = None) -> Dict[str, object]:
    """Time SSL and supervised training steps alternately.

    The SSL step is DINOv3SSL's full step: teacher forward on the 2 global
    crops, student forward/backward on 2 global (iBOT-masked) and
    ``n_local`` local crops with DINO, iBOT, KoLeo and Gram losses, AdamW,
    teacher EMA. The supervised step is a DINOv3Classifier (linear head on
    class + mean patch token) forward/backward/AdamW on one
    ``global_size`` image per sample. Each kind's fastest round counts.

    Returns:
        dict: images/s of both steps and their ratio.
    """
    if threads:
        torch.set_num_threads(threads)
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    cast = BENCH_DTYPES[dtype]
    steps = {
        'ssl': _ssl_step_fn(arch, batch_size, n_local, global_size,
                            local_size, out_dim),
        'supervised': _supervised_step_fn(arch, batch_size, global_size),
    }
    for step in steps.values():
        _timed(step, 1, cast)  # warm-up
    best = best_of_alternating(
        {name: functools.partial(_timed, step, iters, cast)
         for name, step in steps.items()}, rounds)
    return dict(
        arch=arch, dtype=dtype, batch_size=batch_size,
        crops=f'2x{global_size} + {n_local}x{local_size}',
        prototypes=out_dim, threads=torch.get_num_threads(),
        ssl_img_s=round(batch_size / best['ssl'], 2),
        supervised_img_s=round(batch_size / best['supervised'], 2),
        ssl_over_supervised_time=round(best['ssl'] / best['supervised'], 2))


def ssl_rows_to_markdown(rows: List[Dict[str, object]]) -> str:
    """Render :func:`benchmark_ssl_step` rows as a markdown table."""
    cols = ['arch', 'dtype', 'batch_size', 'crops', 'prototypes', 'threads',
            'ssl_img_s', 'supervised_img_s', 'ssl_over_supervised_time']
    return rows_to_markdown(rows, cols)
