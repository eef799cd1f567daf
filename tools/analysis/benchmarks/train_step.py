"""One optimisation step of our classifier vs the same step written plainly
on transformers' model, timed alternately in one process.

Ours: ``DINOv3Classifier.train_step`` with our ``OptimWrapper`` (fp32) or
``AmpOptimWrapper`` (bf16/fp16 autocast), i.e. data preprocessor, forward,
loss, backward, AdamW step and zero-grad as ``tools/train.py`` runs them. The
reference: the same uint8 batch stacked and normalised by hand,
``DINOv3ViTModel`` / ``DINOv3ConvNextModel`` (identical weights, written by
our converter), the same pooled features, a ``nn.Linear`` head,
cross-entropy, ``loss.backward()`` and ``torch.optim.AdamW`` with its
defaults. With ``compile_backend`` ours is ``torch.compile``d the way
mmengine's Runner does it for ``tools/train.py --compile`` (its
``train_step``); the reference stays eager, as a plain loop is written.
"""
import tempfile
import functools
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from dinov3_mm.engine.optimizers.fused import prefer_fused_optimizer
from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample

from .common import (BENCH_DTYPES, autocast, best_of_alternating,
                     rows_to_markdown, sync)
from .compute_floor import floor_columns, floor_columns_in

NUM_CLASSES = 10
LR = 1e-4
#: Normalisation of the classifier's data preprocessor (LVD-1689M, 0-255).
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def _classifier_cfg(arch: str) -> dict:
    """A ``DINOv3Classifier`` config: ViT on class + mean patch token, or
    ConvNeXt on its pooled token, with a linear head."""
    if arch.startswith('convnext_'):
        backbone = dict(type='DINOv3ConvNeXt', arch=arch[len('convnext_'):],
                        out_type='cls_token')
    else:
        backbone = dict(type='DINOv3ViT', arch=arch, out_type='cls_patch_avg')
    return dict(type='DINOv3Classifier', backbone=backbone,
                head=dict(type='LinearClsHead', num_classes=NUM_CLASSES,
                          in_channels=1))


def build_models(arch: str, device: str = 'cpu'):
    """Our classifier and the transformers model + head with its weights.

    Args:
        arch (str): A ViT arch (``'small'``, ``'base'``) or
            ``'convnext_<arch>'`` (e.g. ``'convnext_tiny'``).
        device (str): Where both live.

    Returns:
        tuple: ``(ours, hf_backbone, hf_head)``, all in training mode.
    """
    import transformers

    from dinov3_mm.models.backbones.weights import save_backbone

    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    cfg = _classifier_cfg(arch)
    ours = MODELS.build(cfg)
    backbone = ours.backbone
    feat_dim = (2 * backbone.embed_dims if not arch.startswith('convnext_')
                else backbone.embed_dim)
    ours.head = MODELS.build(dict(type='LinearClsHead',
                                  num_classes=NUM_CLASSES,
                                  in_channels=feat_dim))
    ref_class = (transformers.DINOv3ConvNextModel
                 if arch.startswith('convnext_') else
                 transformers.DINOv3ViTModel)
    with tempfile.TemporaryDirectory() as tmp:
        save_backbone(backbone, tmp, 'hf')
        kwargs = ({} if arch.startswith('convnext_') else
                  dict(attn_implementation='sdpa'))
        ref = ref_class.from_pretrained(tmp, **kwargs)
    head = torch.nn.Linear(feat_dim, NUM_CLASSES)
    head.load_state_dict(ours.head.fc.state_dict())
    return ours.to(device).train(), ref.to(device).train(), head.to(
        device).train()


def make_batch(batch_size: int, img_size: int, device: str = 'cpu'):
    """A fixed uint8 batch as the dataloader gives it, and its labels."""
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (batch_size, 3, img_size, img_size),
                           generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, NUM_CLASSES, (batch_size, ), generator=gen)
    return images.to(device), labels.to(device)


def ours_step_fn(model, images: torch.Tensor, labels: torch.Tensor,
                 dtype: str, device: str,
                 fused: bool = True) -> Callable[[], float]:
    """One ``model.train_step`` with our (Amp)OptimWrapper; returns the loss.

    Args:
        fused (bool): Apply ``tools/train.py``'s default of torch's fused
            AdamW (:func:`prefer_fused_optimizer`); False keeps torch's
            default implementation, as the reference uses.
    """
    cast = BENCH_DTYPES[dtype]
    wrapper = dict(optimizer=dict(type='AdamW', lr=LR))
    if fused:
        prefer_fused_optimizer(wrapper)
    if cast is None:
        wrapper['type'] = 'OptimWrapper'
    else:
        wrapper.update(type='AmpOptimWrapper', dtype=str(cast).split('.')[-1])
        if torch.device(device).type == 'cpu' or cast == torch.bfloat16:
            wrapper['loss_scale'] = 'dynamic'
    optim_wrapper = build_optim_wrapper(model, wrapper)
    samples = [DataSample().set_gt_label(int(label)) for label in labels]
    data = dict(inputs=list(images), data_samples=samples)

    def step() -> float:
        return float(model.train_step(data, optim_wrapper)['loss'].detach())

    return step


def hf_step_fn(backbone, head, images: torch.Tensor, labels: torch.Tensor,
               dtype: str, device: str) -> Callable[[], float]:
    """The same step written plainly on the transformers model."""
    cast = BENCH_DTYPES[dtype]
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=LR)
    scaler = (torch.amp.GradScaler('cuda') if cast == torch.float16 else
              None)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    vit = hasattr(backbone.config, 'num_register_tokens')
    n_prefix = 1 + getattr(backbone.config, 'num_register_tokens', 0)

    def step() -> float:
        x = (torch.stack(list(images)).float() - mean) / std
        with autocast(device, cast):
            out = backbone(pixel_values=x)
            if vit:
                tokens = out.last_hidden_state
                feats = torch.cat(
                    (tokens[:, 0], tokens[:, n_prefix:].mean(1)), dim=-1)
            else:
                feats = out.pooler_output
            loss = F.cross_entropy(head(feats), labels)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def _timed(step: Callable[[], float], iters: int, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    sync(device)
    return (time.perf_counter() - start) / iters


def benchmark_train_step(arch: str = 'small',
                         dtype: str = 'fp32',
                         device: str = 'cpu',
                         batch_size: int = 16,
                         img_size: int = 224,
                         rounds: int = 5,
                         iters: int = 2,
                         warmup: int = 2,
                         threads: Optional[int] = None,
                         fused: bool = True,
                         compile_backend: Optional[str] = None,
                         floor: bool = False) -> Dict[str, object]:
    """Time our step and the plain transformers step alternately.

    Each round runs ``iters`` steps of one, then of the other (the order
    flips every round); each one's fastest round counts.

    Args:
        arch (str): ``'small'``, ``'base'`` or ``'convnext_tiny'`` etc.
        dtype (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (autocast).
        device (str): ``'cpu'`` or ``'cuda'``.
        batch_size (int): Images per step. Defaults to 16.
        img_size (int): Square image side. Defaults to 224.
        rounds (int): Alternating rounds. Defaults to 5.
        iters (int): Steps per round. Defaults to 2.
        warmup (int): Untimed steps of each first. Defaults to 2.
        threads (int, optional): ``torch.set_num_threads`` value.
        fused (bool): Our AdamW fused, as ``tools/train.py`` sets it.
        compile_backend (str, optional): ``torch.compile`` our
            ``train_step`` with this backend (e.g. ``'inductor'``); the
            warm-up steps include the compilation.
        floor (bool): Also report the compute floor: the reference step's
            matrix FLOPs at this machine's best ``torch.mm`` rate in the
            step's dtype (``floor_img_s``), and the largest speed-up over
            the reference that any implementation of the same computation
            could show (``max_speedup``).

    Returns:
        dict: img/s of both, the speed-up and the first-step losses.
    """
    if threads:
        torch.set_num_threads(threads)
    ours, ref, head = build_models(arch, device)
    if compile_backend:
        ours.train_step = torch.compile(ours.train_step,
                                        backend=compile_backend)
    images, labels = make_batch(batch_size, img_size, device)
    steps = {
        'ours': ours_step_fn(ours, images, labels, dtype, device, fused),
        'hf': hf_step_fn(ref, head, images, labels, dtype, device),
    }
    first = {name: step() for name, step in steps.items()}
    for step in steps.values():
        for _ in range(warmup - 1):
            step()
    best = best_of_alternating(
        {name: functools.partial(_timed, step, iters, device)
         for name, step in steps.items()}, rounds)
    extra = floor_columns(steps['hf'], best['hf'], batch_size, dtype,
                          device) if floor else {}
    return dict(
        arch=arch, dtype=dtype, device=device, batch_size=batch_size,
        img_size=img_size, threads=torch.get_num_threads(), fused=fused,
        compile=compile_backend or '-',
        ours_img_s=round(batch_size / best['ours'], 2),
        hf_img_s=round(batch_size / best['hf'], 2),
        speedup=round(best['hf'] / best['ours'], 3),
        ours_loss0=round(first['ours'], 4), hf_loss0=round(first['hf'], 4),
        **extra)


def to_markdown(rows: List[Dict[str, object]]) -> str:
    """Render :func:`benchmark_train_step` rows as a markdown table."""
    return rows_to_markdown(rows, [
        'arch', 'dtype', 'device', 'batch_size', 'img_size', 'threads',
        'fused', 'compile', 'ours_img_s', 'hf_img_s', 'speedup', 'ours_loss0',
        'hf_loss0'
    ] + floor_columns_in(rows))
