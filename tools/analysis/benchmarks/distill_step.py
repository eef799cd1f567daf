"""Images/s of one distillation step vs an SSL continuation step of the same
student, on the CPU (``tools/analysis/benchmark_distill_step.py``)."""
import functools
from typing import Callable, Dict, Optional

import torch
from mmengine.registry import init_default_scope

from dinov3_mm.registry import MODELS
from dinov3_mm.utils.quiet_init import init_weights_quietly

from .common import BENCH_DTYPES, best_of_alternating
from .ssl_step import _ssl_step_fn, _timed


def distill_step_fn(teacher: str, student: str, batch_size: int,
                    size: int, teacher_autocast: Optional[str]
                    ) -> Callable[[], None]:
    """One DINOv3Distiller training step on a fixed random batch."""
    model = MODELS.build(dict(
        type='DINOv3Distiller',
        teacher=dict(type='DINOv3ViT', arch=teacher),
        student=dict(type='DINOv3ViT', arch=student),
        global_loss=dict(cosine=1.0), dense_loss=dict(cosine=1.0),
        teacher_autocast=teacher_autocast))
    init_weights_quietly(model)
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-5)
    images = torch.randn(batch_size, 3, size, size)

    def step():
        losses = model(images, mode='loss')
        loss = sum(v for k, v in losses.items() if k.startswith('loss_'))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def benchmark_distill_step(args) -> Dict[str, object]:
    """Time both steps alternately; return images/s and their ratio."""
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    cast = BENCH_DTYPES[args.dtype]
    steps = {
        'distill': distill_step_fn(
            args.teacher, args.student, args.batch_size, args.size,
            'bfloat16' if args.dtype == 'bf16' else None),
        'ssl': _ssl_step_fn(args.student, args.batch_size, args.local_crops,
                            args.size, args.local_size, args.prototypes),
    }
    for step in steps.values():
        _timed(step, 1, cast)  # warm-up
    best = best_of_alternating(
        {name: functools.partial(_timed, step, args.iters, cast)
         for name, step in steps.items()}, args.rounds)
    return dict(
        teacher=args.teacher, student=args.student, dtype=args.dtype,
        batch_size=args.batch_size, size=args.size,
        ssl_crops=f'2x{args.size} + {args.local_crops}x{args.local_size}',
        prototypes=args.prototypes, threads=torch.get_num_threads(),
        distill_img_s=round(args.batch_size / best['distill'], 2),
        ssl_img_s=round(args.batch_size / best['ssl'], 2),
        ssl_over_distill_time=round(best['ssl'] / best['distill'], 2))
