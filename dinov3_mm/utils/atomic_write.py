"""Crash-safe file writes: a temporary file in the target's folder, renamed.

A reader sees either the old file or the complete new one, never a truncated
one. The temporary file is named ``<name>.<random>.tmp`` next to the target,
so leftovers of a killed write can be found (:func:`remove_stale_temp_files`).
The written file gets the mode an ordinary ``open(path, 'w')`` would give it
(``0o666`` less the umask), not the ``0o600`` of :func:`tempfile.mkstemp`.
"""
import glob
import io
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, List, Optional, TextIO, Union

PathLike = Union[str, Path]
TEMP_SUFFIX = '.tmp'


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> str:
    """Call ``write(file)`` on a temporary file, then rename it to ``path``.

    Args:
        path (str | Path): The file to create or replace.
        write (callable): Writes the content to the open binary file it is
            given (e.g. ``lambda f: torch.save(obj, f)``).

    Returns:
        str: ``path``.
    """
    path = str(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=osp.basename(path) + '.', suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_bytes(data: bytes, path: PathLike) -> str:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: PathLike,
                      write: Callable[[TextIO], None],
                      encoding: str = 'utf-8',
                      newline: Optional[str] = None) -> str:
    """Like :func:`atomic_write`, for ``write`` functions that write text.

    Args:
        path (str | Path): The file to create or replace.
        write (callable): Writes the content to the text file it is given
            (e.g. a :func:`csv.writer` over it).
        encoding (str): Text encoding. Defaults to ``'utf-8'``.
        newline (str, optional): As for :func:`open`; ``''`` for the csv
            module. Defaults to None (universal newlines).

    Returns:
        str: ``path``.
    """

    def write_binary(f: BinaryIO) -> None:
        text = io.TextIOWrapper(f, encoding=encoding, newline=newline)
        try:
            write(text)
        finally:
            text.detach()  # flushes; the binary file stays open

    return atomic_write(path, write_binary)


def remove_stale_temp_files(directory: PathLike) -> List[str]:
    """Delete temporary files that a killed :func:`atomic_write` left behind.

    Only names of the form ``<existing-or-not name>.<8 random chars>.tmp``
    directly inside ``directory`` are removed.

    Returns:
        list[str]: The removed paths.
    """
    removed = []
    for tmp in sorted(glob.glob(osp.join(glob.escape(str(directory)),
                                         '*.*' + TEMP_SUFFIX))):
        stem = osp.basename(tmp)[:-len(TEMP_SUFFIX)]
        random_part = stem.rsplit('.', 1)[-1]
        if len(random_part) == 8 and osp.isfile(tmp):
            os.remove(tmp)
            removed.append(tmp)
    return removed
