"""The file layout of sharded (FSDP) training checkpoints.

A sharded checkpoint ``epoch_3.pth`` written by ``N`` ranks is ``N + 1``
files in one folder:

* ``epoch_3.pth.shard<r>-of-<N>``: rank ``r``'s part of the model and
  optimizer state (``state_dict`` and ``optimizer``). A tensor sharded along
  its first dimension holds only that rank's rows.
* ``epoch_3.pth``: the index, written last, once every shard file is
  complete, so the checkpoint exists exactly when its index does. It holds
  everything else of an mmengine checkpoint (``meta``, ``message_hub``,
  ``param_schedulers``) and, under :data:`SHARD_INDEX_KEY`, the shard file
  names, the world size and the key path and full shape of every sharded
  tensor.

:func:`split_shard` turns one rank's checkpoint dict (holding
``torch.distributed.tensor.DTensor`` values) into the index part and the
shard part; :func:`merge_shards` glues the shards of all ranks back into one
ordinary checkpoint. Reading files stays with
:mod:`dinov3_mm.utils.checkpoint_io`, which merges a sharded checkpoint
whenever one is read as a whole.
"""
import os.path as osp
from typing import Any, Dict, List, Sequence, Tuple

import torch

#: Key of the shard record in a sharded checkpoint's index file.
SHARD_INDEX_KEY = 'sharded_checkpoint'
#: Top-level checkpoint entries that hold (possibly sharded) tensors.
SHARDED_ENTRIES = ('state_dict', 'optimizer')

KeyPath = Tuple[Any, ...]


def shard_file_name(index_path: str, rank: int, world_size: int) -> str:
    """The file that holds rank ``rank``'s shard next to ``index_path``."""
    return f'{index_path}.shard{rank}-of-{world_size}'


def is_shard_index(checkpoint: Any) -> bool:
    """Whether a loaded checkpoint object is a sharded checkpoint's index."""
    return isinstance(checkpoint, dict) and SHARD_INDEX_KEY in checkpoint


def _local_tensors(obj: Any, path: KeyPath,
                   sharded: Dict[KeyPath, List[int]]) -> Any:
    """``obj`` with every DTensor replaced by its local rows on the CPU."""
    from torch.distributed.tensor import DTensor, Shard
    if isinstance(obj, DTensor):
        if tuple(obj.placements) != (Shard(0), ):
            raise ValueError(
                f'{"/".join(map(str, path))} is placed as '
                f'{tuple(obj.placements)}; sharded checkpoints hold tensors '
                'sharded along dim 0 on one mesh dimension (FSDP2 default).')
        sharded[path] = list(obj.shape)
        return obj.to_local().detach().cpu()
    if isinstance(obj, dict):
        return {k: _local_tensors(v, path + (k, ), sharded)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_local_tensors(v, path + (i, ), sharded)
                         for i, v in enumerate(obj))
    return obj


def split_shard(checkpoint: dict, index_path: str, rank: int,
                world_size: int) -> Tuple[dict, dict]:
    """Split one rank's checkpoint dict into its index and its shard.

    Args:
        checkpoint (dict): An mmengine checkpoint whose ``state_dict`` and
            ``optimizer`` may hold DTensors sharded along dim 0.
        index_path (str): Where the index will be written.
        rank (int): This process's rank.
        world_size (int): The number of ranks.

    Returns:
        tuple[dict, dict]: The index (what rank 0 writes at
        ``index_path``) and this rank's shard (plain CPU tensors).
    """
    sharded: Dict[KeyPath, List[int]] = {}
    shard = {key: _local_tensors(checkpoint[key], (key, ), sharded)
             for key in SHARDED_ENTRIES if key in checkpoint}
    index = {k: v for k, v in checkpoint.items() if k not in SHARDED_ENTRIES}
    index[SHARD_INDEX_KEY] = dict(
        world_size=world_size,
        files=[osp.basename(shard_file_name(index_path, r, world_size))
               for r in range(world_size)],
        sharded=[(list(path), shape) for path, shape in sharded.items()])
    return index, shard


def _get(obj: Any, path: Sequence[Any]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _set(obj: Any, path: Sequence[Any], value: Any) -> None:
    _get(obj, path[:-1])[path[-1]] = value


def merge_shards(index: dict, shards: List[dict], name: str) -> dict:
    """One ordinary checkpoint from a sharded checkpoint's index and shards.

    Sharded tensors are concatenated along dim 0 in rank order; every other
    shard entry is taken from rank 0.

    Args:
        index (dict): The index file's content.
        shards (list[dict]): The content of every shard file, rank order.
        name (str): The index file's name, for errors.

    Returns:
        dict: ``index`` without the shard record, plus the full
        ``state_dict`` and ``optimizer``.

    Raises:
        ValueError: The number of shards or a merged shape does not match
            the index.
    """
    record = index[SHARD_INDEX_KEY]
    if len(shards) != record['world_size']:
        raise ValueError(f'{name} was written by {record["world_size"]} '
                         f'ranks but {len(shards)} shards were given.')
    merged = {k: v for k, v in index.items() if k != SHARD_INDEX_KEY}
    merged.update(shards[0])
    for path, shape in record['sharded']:
        try:
            full = torch.cat([_get(shard, path) for shard in shards])
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(
                f'{name}: a shard has no {"/".join(map(str, path))}; a shard '
                'file belongs to another save. Use another checkpoint.'
            ) from exc
        if list(full.shape) != list(shape):
            raise ValueError(
                f'{name}: the shards of {"/".join(map(str, path))} add up to '
                f'{list(full.shape)}, the index says {list(shape)}; a shard '
                'file belongs to another save. Use another checkpoint.')
        _set(merged, path, full)
    return merged
