"""Crash-safe local file writes for everything mmengine saves.

mmengine writes checkpoints through its local file backend with a plain
``open(path, 'wb')``: a process killed mid-write leaves a truncated checkpoint
behind. :func:`register_atomic_local_backend` swaps in a backend that writes
through :func:`dinov3_mm.utils.atomic_write.atomic_write_bytes` (temporary
file in the same directory, fsync, rename), so a reader sees either the old
file or the complete new one.
"""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io

from dinov3_mm.utils.atomic_write import atomic_write_bytes


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose writes are atomic."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


def register_atomic_local_backend() -> None:
    """Make :class:`AtomicLocalBackend` mmengine's backend for local paths."""
    if mmengine_io.prefix_to_backends.get('') is AtomicLocalBackend:
        return
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # drop instances of the old backend cached by get_file_backend
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mmengine_io.backend_instances[key]
