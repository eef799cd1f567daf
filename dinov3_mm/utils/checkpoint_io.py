"""Reading checkpoint files without ever running code from them.

Every checkpoint read in dinov3_mm ends in :func:`load_weights_only`: it
passes ``weights_only=True`` to :func:`torch.load` explicitly, which torch
honours even when ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set (that
variable only changes the default), and reads ``.safetensors`` files with
safetensors. Failures name the file and say what is wrong with it: missing,
empty, truncated, not a checkpoint, or holding Python objects that
weights-only loading refuses to build.
"""
import io
import os
import os.path as osp
import pickle
import zipfile
from typing import Any, List, Union

import torch

from .sharded_checkpoint import (SHARD_INDEX_KEY, is_shard_index,
                                 merge_shards)

CheckpointSource = Union[str, bytes]


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model."""


def preview(keys: List[str], n: int = 5) -> str:
    """The first ``n`` keys, comma-separated, with a count of the rest."""
    shown = ', '.join(keys[:n])
    return shown + (f', ... (+{len(keys) - n} more)' if len(keys) > n else '')


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _head(stream) -> bytes:
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()[:4]
    with open(stream, 'rb') as f:
        return f.read(4)


def _is_truncated_zip(stream) -> bool:
    """A zip header (torch's format since 1.6) without a readable end."""
    if _head(stream)[:2] != b'PK':
        return False
    if isinstance(stream, io.BytesIO):
        stream.seek(0)
    return not zipfile.is_zipfile(stream)


def _read_error(name: str, size: int, stream,
                exc: BaseException) -> CheckpointError:
    """A :class:`CheckpointError` explaining why ``torch.load`` failed."""
    if _head(stream)[:2] not in (b'PK', b'\x80\x02'):
        return CheckpointError(
            f'{name} is not a readable checkpoint: it is neither a zip '
            'archive nor a pickle, so not a PyTorch file. Pass the .pth file '
            'written by tools/train.py or a .safetensors file.')
    if isinstance(exc, EOFError) or _is_truncated_zip(stream):
        return CheckpointError(
            f'{name} ({size} bytes) is truncated (a save that was killed, an '
            'incomplete copy or download?). Use another checkpoint, e.g. the '
            'previous epoch. Detail: ' + _first_line(exc))
    if isinstance(exc, pickle.UnpicklingError) or 'Weights only load' in str(
            exc):
        return CheckpointError(
            f'{name} holds Python objects that weights-only loading does not '
            'allow, so it was not loaded (dinov3_mm never runs code from a '
            'checkpoint, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD says). If '
            'you trust the file, re-save its tensors: torch.save('
            "{'state_dict': model.state_dict()}, path). Detail: " +
            _first_line(exc))
    return CheckpointError(f'{name} could not be read as a checkpoint: ' +
                           _first_line(exc))


def load_weights_only(source: CheckpointSource,
                      map_location: Any = 'cpu',
                      name: str = None,
                      mmap: bool = False,
                      merge: bool = True) -> Any:
    """Read a torch or safetensors checkpoint without running code.

    The index of a sharded checkpoint
    (:mod:`~dinov3_mm.utils.sharded_checkpoint`) is read with all its shard
    files and merged into one ordinary checkpoint, unless ``merge`` is
    False.

    Args:
        source (str | bytes): A file path, or the file's bytes.
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.
        name (str, optional): How to name the checkpoint in errors (defaults
            to the path).
        mmap (bool): Memory-map a file instead of reading it (cheap for a
            check that it loads). Defaults to False.
        merge (bool): Merge a sharded checkpoint's shards. Defaults to True.

    Returns:
        The unpickled object (for safetensors, the tensor dict).

    Raises:
        FileNotFoundError: The path does not exist.
        CheckpointError: Empty, truncated, not a checkpoint, holding
            objects that weights-only loading refuses, or a sharded
            checkpoint with a shard missing or not matching.
    """
    checkpoint = _load_one(source, map_location, name, mmap)
    if merge and is_shard_index(checkpoint):
        if not isinstance(source, str):
            raise CheckpointError(
                f'{name or "checkpoint"} is the index of a sharded checkpoint '
                'read from memory; read it from its folder, next to its '
                '.shard<r>-of-<N> files.')
        return read_shards(source, checkpoint, map_location, name)
    return checkpoint


def read_shards(index_path: str, index: dict, map_location: Any = 'cpu',
                name: str = None, ranks=None) -> Any:
    """The shards of a sharded checkpoint, merged (or only some ranks').

    Args:
        index_path (str): The index file.
        index (dict): Its content.
        map_location: Passed to :func:`torch.load`.
        name (str, optional): How to name the checkpoint in errors.
        ranks (list[int], optional): Read only these ranks' shards and
            return them (index entries included) instead of merging all.

    Raises:
        CheckpointError: A shard file is missing, unreadable or does not
            match the index.
    """
    name = name or index_path
    record = index[SHARD_INDEX_KEY]
    folder = osp.dirname(osp.expanduser(index_path))
    wanted = range(record['world_size']) if ranks is None else ranks
    shards = []
    for rank in wanted:
        path = osp.join(folder, record['files'][rank])
        if not osp.exists(path):
            raise CheckpointError(
                f'{name} is a checkpoint sharded over {record["world_size"]} '
                f'ranks, but its shard {path} is missing. Keep every '
                '.shard<r>-of-<N> file next to the index.')
        shards.append(_load_one(path, map_location, None, False))
    if ranks is not None:
        return [dict(index, **shard) for shard in shards]
    try:
        return merge_shards(index, shards, name)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc


def _load_one(source: CheckpointSource, map_location: Any, name: str,
              mmap: bool) -> Any:
    """One file (or bytes) read with ``weights_only=True``, as it is."""
    if isinstance(source, (bytes, bytearray)):
        name, size, stream = name or 'checkpoint', len(source), io.BytesIO(
            source)
    else:
        path = osp.expanduser(str(source))
        name = name or path
        if not osp.exists(path):
            raise FileNotFoundError(f'Checkpoint {name} does not exist.')
        if osp.isdir(path):
            raise CheckpointError(f'{name} is a directory, not a checkpoint '
                                  'file.')
        size, stream = os.path.getsize(path), path
    if size == 0:
        raise CheckpointError(
            f'{name} is empty (0 bytes): the save that wrote it was '
            'interrupted or the copy failed. Use another checkpoint.')
    if name.endswith('.safetensors'):
        return _load_safetensors(stream, name)
    try:
        return torch.load(stream, map_location=map_location,
                          weights_only=True, mmap=mmap and isinstance(
                              stream, str))
    except Exception as exc:  # torch raises many types for a bad file
        raise _read_error(name, size, stream, exc) from exc


def _load_safetensors(stream, name: str) -> dict:
    from safetensors.torch import load, load_file
    try:
        if isinstance(stream, io.BytesIO):
            return load(stream.getvalue())
        return load_file(stream, device='cpu')
    except Exception as exc:
        raise CheckpointError(f'{name} is not a readable safetensors file: '
                              f'{_first_line(exc)}') from exc
