"""Per-rank parameter + optimizer memory of a classifier, sharded or not.

Each measurement runs in its own processes (gloo on the CPU, NCCL on CUDA):
the DINOv3 classifier is built from the registry, wrapped in
:class:`~dinov3_mm.engine.fsdp.FSDPWrapper` (or left whole for the
reference), given AdamW with layer-wise lr decay, and takes one training
step, so the optimizer state exists. Then every rank counts the bytes of
the tensors it holds: its parameters (their local rows when sharded) and
its AdamW moments.
"""
import os
import socket
import tempfile
from typing import Dict, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _local_bytes(tensor: torch.Tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, 'to_local') else tensor
    return local.numel() * local.element_size()


def _measure(rank: int, world: int, port: int, arch: str, sharded: bool,
             device: str, batch_size: int, out_dir: str) -> None:
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import dinov3_mm  # noqa: F401
    from dinov3_mm.engine.fsdp import FSDPWrapper
    from dinov3_mm.models.backbones.dinov3_vit import DINOv3ViT
    from dinov3_mm.registry import MODELS
    from dinov3_mm.structures import DataSample
    init_default_scope('dinov3_mm')
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    backend = 'nccl' if device == 'cuda' else 'gloo'
    dist.init_process_group(backend, rank=rank, world_size=world)
    if device == 'cuda':
        torch.cuda.set_device(rank)
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DINOv3Classifier',
        data_preprocessor=dict(type='ClsDataPreprocessor',
                               normalization='lvd1689m'),
        backbone=dict(type='DINOv3ViT', arch=arch, out_type='cls_token'),
        head=dict(type='LinearClsHead', num_classes=10,
                  in_channels=DINOv3ViT.arch_zoo[arch]['embed_dims']))
    ).to(device)
    if sharded:
        model = FSDPWrapper(model)
    optim = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.75)))
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                        for _ in range(batch_size)],
                data_samples=[DataSample().set_gt_label(i % 10)
                              for i in range(batch_size)])
    model.train_step(data, optim)
    params = sum(_local_bytes(p) for p in model.parameters())
    moments = sum(_local_bytes(v) for state in optim.optimizer.state.values()
                  for v in state.values() if v.dim() > 0)
    torch.save(dict(params=params, moments=moments),
               os.path.join(out_dir, f'{int(sharded)}-{world}-{rank}.pt'))
    dist.destroy_process_group()


def measure(arch: str, world: int, sharded: bool, device: str = 'cpu',
            batch_size: int = 2) -> Dict[str, int]:
    """Bytes of parameters and optimizer moments on rank 0.

    Args:
        arch (str): DINOv3ViT arch name.
        world (int): Number of processes.
        sharded (bool): Wrap in FSDPWrapper (else every rank holds all).
        device (str): ``'cpu'`` or ``'cuda'``.
        batch_size (int): Images of the one training step per rank.
    """
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_measure, nprocs=world,
                 args=(world, _free_port(), arch, sharded, device,
                       batch_size, out_dir))
        return torch.load(os.path.join(out_dir, f'{int(sharded)}-{world}-0.pt'),
                          weights_only=True)


def fsdp_memory_rows(arch: str, worlds: List[int], device: str = 'cpu'
                     ) -> List[Dict[str, object]]:
    """One row per world size, and the one-process unsharded reference."""
    reference = measure(arch, 1, False, device)
    total = reference['params'] + reference['moments']
    rows = [dict(setup='unsharded, 1 process', ranks=1,
                 params_mib=round(reference['params'] / 2**20, 1),
                 moments_mib=round(reference['moments'] / 2**20, 1),
                 ratio=1.0)]
    for world in worlds:
        got = measure(arch, world, True, device)
        rows.append(dict(
            setup=f'FSDPWrapper, {world} processes', ranks=world,
            params_mib=round(got['params'] / 2**20, 1),
            moments_mib=round(got['moments'] / 2**20, 1),
            ratio=round((got['params'] + got['moments']) / total, 3)))
    return rows
