"""Sharded data-parallel training with torch's FSDP2 (``fully_shard``).

Plain DDP keeps a full copy of the weights, gradients and AdamW moments on
every rank; a ViT-L full fine-tune or an SSL run of ViT-H+ or 7B does not
fit that way. :class:`FSDPWrapper` shards them: every rank holds ``1/N`` of
each parameter (a ``DTensor`` sharded along dim 0) and gathers a block's
weights only while that block runs. Select it in a config::

    model_wrapper_cfg = dict(type='FSDPWrapper', mixed_precision='bf16',
                             activation_checkpointing=True)

or with ``tools/dist_train.sh CONFIG N --fsdp``. Parameter names do not
change, so layer-wise learning-rate decay, LoRA (frozen base weights next to
trainable adapters in one block) and strict checkpoint loading work as
without sharding.

Checkpoints are sharded too: every rank writes its rows
(:mod:`dinov3_mm.utils.sharded_checkpoint`), each file atomically, and
rank 0 writes the index last. Resuming on the same number of ranks reads
only the rank's own shard; on another number of ranks, or from an unsharded
checkpoint, the full tensors are read and each rank keeps its rows.
``tools/convert_checkpoint.py CKPT OUT --merge-shards`` writes one ordinary
file; every dinov3_mm tool reads a sharded checkpoint as a whole anyway.
"""
import glob
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

from dinov3_mm.utils.atomic_write import atomic_write
from dinov3_mm.utils.checkpoint_io import read_shards
from dinov3_mm.utils.sharded_checkpoint import shard_file_name, split_shard

#: Modules sharded as one unit by default: the blocks of the DINOv3 ViT and
#: ConvNeXt backbones (the rest of the model forms the root unit).
DEFAULT_SHARD_MODULES = ('Block', 'ConvNeXtBlock')
PRECISIONS = {'bf16': torch.bfloat16, 'fp16': torch.float16, None: None}


# In mmengine's root registry: Runner.wrap_model looks the type up there
# without switching to the dinov3_mm scope.
@MODEL_WRAPPERS.register_module()
class FSDPWrapper(nn.Module):
    """Shard a model over all ranks with FSDP2 ``fully_shard``.

    Args:
        module (nn.Module): The model (a :class:`mmengine.model.BaseModel`).
        shard_modules (Sequence[str]): Class names of the submodules that
            are sharded (gathered and freed) as one unit each, in addition
            to the whole model. Defaults to :data:`DEFAULT_SHARD_MODULES`.
        mixed_precision (str, optional): ``'bf16'`` or ``'fp16'``: compute
            with parameters cast to that type, reduce gradients in fp32 and
            keep fp32 master weights and optimizer state. Defaults to None
            (fp32). Use it instead of ``--amp``.
        activation_checkpointing (bool): Recompute block activations in the
            backward pass (sets ``with_cp`` of every submodule that has it).
        reshard_after_forward (bool): Free gathered weights after a block's
            forward (less memory, one more all-gather in backward).

    Raises:
        ValueError: Unknown precision, no ``with_cp`` switch for activation
            checkpointing, or no process group.
    """

    def __init__(self,
                 module: nn.Module,
                 shard_modules: Sequence[str] = DEFAULT_SHARD_MODULES,
                 mixed_precision: Optional[str] = None,
                 activation_checkpointing: bool = False,
                 reshard_after_forward: bool = True) -> None:
        super().__init__()
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        if not dist.is_available() or not dist.is_initialized():
            raise ValueError('FSDPWrapper needs a process group: launch with '
                             'tools/dist_train.sh (torchrun).')
        if mixed_precision not in PRECISIONS:
            raise ValueError(f'mixed_precision={mixed_precision!r}; use one '
                             f'of {[k for k in PRECISIONS if k]} or None.')
        if activation_checkpointing:
            enable_activation_checkpointing(module)
        init_before_sharding(module)
        device = 'cuda' if next(module.parameters()).is_cuda else 'cpu'
        mesh = init_device_mesh(device, (dist.get_world_size(), ))
        dtype = PRECISIONS[mixed_precision]
        policy = MixedPrecisionPolicy(
            param_dtype=dtype, reduce_dtype=torch.float32 if dtype else None)
        self.shard_units = [
            m for m in module.modules()
            if type(m).__name__ in shard_modules and m is not module]
        for unit in self.shard_units:
            fully_shard(unit, mesh=mesh, mp_policy=policy,
                        reshard_after_forward=reshard_after_forward)
        fully_shard(module, mesh=mesh, mp_policy=policy,
                    reshard_after_forward=reshard_after_forward)
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def train_step(self, data, optim_wrapper) -> Dict[str, torch.Tensor]:
        """The model's own ``train_step`` (FSDP2 hooks do the rest)."""
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data) -> list:
        """The model's ``val_step`` (on every rank: it gathers weights)."""
        return self.module.val_step(data)

    def test_step(self, data) -> list:
        """The model's ``test_step`` (on every rank: it gathers weights)."""
        return self.module.test_step(data)


def init_before_sharding(model: nn.Module) -> None:
    """Run ``init_weights`` (random init, pretrained ``init_cfg``) and make
    every rank hold rank 0's weights, while they are still whole.

    The Runner initialises after wrapping and then broadcasts every tensor,
    which sharded parameters do not support; it skips both for
    :class:`FSDPWrapper` (see ``StrictRunner._init_model_weights``).
    """
    if hasattr(model, 'init_weights'):
        model.init_weights()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Switch on ``with_cp`` of every submodule that has it.

    Returns:
        int: How many modules were switched.

    Raises:
        ValueError: No submodule has a ``with_cp`` switch.
    """
    switched = [m for m in model.modules() if hasattr(m, 'with_cp')]
    if not switched:
        raise ValueError(
            f'activation_checkpointing=True, but no module of '
            f'{type(model).__name__} has a with_cp switch; its backbone must '
            'offer one (DINOv3ViT and DINOv3ConvNeXt do).')
    for module in switched:
        module.with_cp = True
    return len(switched)


def is_sharded_model(model: nn.Module) -> bool:
    """Whether ``model`` is (wrapped by) a :class:`FSDPWrapper`."""
    return isinstance(model, FSDPWrapper)


def _dtensor_like(value: Any, live: Any, local: bool) -> Any:
    """``value`` (local rows or the full tensor) placed like ``live``."""
    from torch.distributed.tensor import DTensor, distribute_tensor
    if not isinstance(live, DTensor) or not isinstance(value, torch.Tensor) \
            or isinstance(value, DTensor):
        return value
    value = value.to(live.device)
    if local and tuple(value.shape) == tuple(live.to_local().shape):
        return DTensor.from_local(value, live.device_mesh, live.placements,
                                  run_check=False, shape=live.shape,
                                  stride=live.stride())
    if tuple(value.shape) == tuple(live.shape):
        return distribute_tensor(value, live.device_mesh, live.placements,
                                 src_data_rank=None)
    return value  # a mismatch: the strict loader names it


def place_checkpoint(checkpoint: dict, model: nn.Module,
                     optimizer: Optional[torch.optim.Optimizer],
                     local: bool) -> dict:
    """Turn a checkpoint's tensors into DTensors placed like the model's.

    Args:
        checkpoint (dict): With ``state_dict`` and optionally ``optimizer``
            (a ``torch.optim`` state dict) holding this rank's rows
            (``local``) or full tensors.
        model (nn.Module): The sharded model (unwrapped).
        optimizer (Optimizer, optional): Its optimizer, built; without it
            the optimizer state is left as it is.
        local (bool): The tensors are this rank's rows of a sharded
            checkpoint written by as many ranks.

    Returns:
        dict: ``checkpoint``, changed in place.
    """
    live = model.state_dict()
    state_dict = checkpoint['state_dict']
    for key, value in state_dict.items():
        if key in live:
            state_dict[key] = _dtensor_like(value, live[key], local)
    saved = checkpoint.get('optimizer')
    if optimizer is not None and isinstance(saved, dict) and \
            'state' in saved:
        params: List[torch.Tensor] = [
            p for group in optimizer.param_groups for p in group['params']]
        for index, state in saved['state'].items():
            if not 0 <= index < len(params):
                continue  # a mismatch: the optimizer's own check names it
            for name, value in state.items():
                state[name] = _dtensor_like(value, params[index], local)
    return checkpoint


def read_for_rank(filename: str, index: dict) -> tuple:
    """A sharded checkpoint as this rank needs it.

    Returns:
        tuple[dict, bool]: The checkpoint and whether its tensors are this
        rank's rows (same world size) rather than full tensors.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    if index['sharded_checkpoint']['world_size'] == world:
        return read_shards(filename, index, ranks=[rank])[0], True
    return read_shards(filename, index), False


def save_rank_shards(checkpoint: dict, filepath: str, **_) -> None:
    """Write this rank's shard, then (rank 0, after every rank) the index.

    Called on every rank with the same ``filepath``; each file is written
    atomically, and the index last, so an interrupted save leaves the
    previous checkpoints intact and no index pointing at missing shards.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    index, shard = split_shard(checkpoint, filepath, rank, world)
    atomic_write(shard_file_name(filepath, rank, world),
                 lambda f: torch.save(shard, f))
    dist.barrier()
    if rank == 0:
        atomic_write(filepath, lambda f: torch.save(index, f))
    dist.barrier()


def orphan_shards(work_dir: str) -> Iterable[str]:
    """Shard files in ``work_dir`` whose index no longer exists."""
    for path in glob.glob(osp.join(glob.escape(work_dir), '*.shard*-of-*')):
        index = path[:path.rindex('.shard')]
        if not osp.exists(index):
            yield path

