"""Our DINOv3DETR vs mmdet's DINO on the same DINOv3 ViT-S/16 backbone:
training step and inference images/s (``tools/analysis/benchmark_detr_step.py``).

Both models come from the shipped configs
(``configs/detection/vits16_detr_instances.py`` and
``configs/detection/mmdet_dino_vits16.py``), get the same random batch
(normalised images of ``size`` px, five boxes per image) and are timed in one
process, alternating rounds, the fastest round of each side counting. A step
is forward with losses, backward and AdamW; inference is ``predict`` under
``no_grad``. ``bf16`` runs both under ``torch.autocast``.
"""
import functools
import time
from typing import Callable, Dict

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from .common import BENCH_DTYPES, autocast, best_of_alternating, sync

OURS = 'configs/detection/vits16_detr_instances.py'
MMDET = 'configs/detection/mmdet_dino_vits16.py'


def random_targets(batch: int, size: int, num_boxes: int = 5,
                   seed: int = 0):
    """Boxes ``(num_boxes, 4)`` xyxy in pixels and labels per image."""
    gen = torch.Generator().manual_seed(seed)
    targets = []
    for _ in range(batch):
        xy = torch.rand(num_boxes, 2, generator=gen) * size * 0.7
        wh = (torch.rand(num_boxes, 2, generator=gen) * 0.25 + 0.05) * size
        targets.append((torch.cat([xy, xy + wh], 1),
                        torch.randint(0, 4, (num_boxes, ), generator=gen)))
    return targets


def _samples(sample_cls, targets, size: int):
    samples = []
    for boxes, labels in targets:
        sample = sample_cls(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            batch_input_shape=(size, size), pad_shape=(size, size),
            scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=boxes.clone(),
                                           labels=labels.clone())
        samples.append(sample)
    return samples


def build_ours(device: str):
    from dinov3_mm.registry import MODELS
    from dinov3_mm.structures import DetDataSample
    from dinov3_mm.utils.quiet_init import init_weights_quietly
    init_default_scope('dinov3_mm')
    model = MODELS.build(Config.fromfile(OURS).model)
    init_weights_quietly(model)
    return model.to(device), DetDataSample


def build_mmdet(device: str):
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    from dinov3_mm.utils.quiet_init import init_weights_quietly
    init_default_scope('mmdet')
    cfg = Config.fromfile(MMDET).model
    cfg.pop('_scope_', None)
    model = MODELS.build(cfg)
    init_weights_quietly(model)
    init_default_scope('dinov3_mm')
    return model.to(device), DetDataSample


def step_fns(model, sample_cls, batch: int, size: int, device: str,
             dtype) -> Dict[str, Callable[[], None]]:
    """``train`` and ``infer`` closures over one fixed batch."""
    images = torch.randn(batch, 3, size, size, device=device)
    targets = [(b.to(device), l.to(device))
               for b, l in random_targets(batch, size)]
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def train():
        model.train()
        with autocast(device, dtype):
            losses = model(images, _samples(sample_cls, targets, size),
                           mode='loss')
            loss = sum(v.sum() for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer():
        model.eval()
        with autocast(device, dtype):
            model(images, _samples(sample_cls, targets, size),
                  mode='predict')

    return dict(train=train, infer=infer)


def _timed(fn: Callable[[], None], iters: int, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def benchmark_detr_step(args) -> Dict[str, object]:
    """Images/s of both models' training step and inference, and ratios."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = BENCH_DTYPES[args.dtype]
    sides = dict(ours=build_ours(args.device),
                 mmdet_dino=build_mmdet(args.device))
    fns = {name: step_fns(model, cls, args.batch_size, args.size,
                          args.device, dtype)
           for name, (model, cls) in sides.items()}
    row = dict(device=args.device, dtype=args.dtype,
               batch_size=args.batch_size, size=args.size,
               threads=torch.get_num_threads())
    for kind in ('train', 'infer'):
        for name in fns:
            fns[name][kind]()  # warm-up
        best = best_of_alternating(
            {name: functools.partial(_timed, fns[name][kind], args.iters,
                                     args.device) for name in fns},
            args.rounds)
        for name, seconds in best.items():
            row[f'{kind}_{name}_img_s'] = round(args.batch_size / seconds, 2)
        row[f'{kind}_speedup'] = round(best['mmdet_dino'] / best['ours'], 2)
    return row
