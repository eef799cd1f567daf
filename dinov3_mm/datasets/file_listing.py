"""Listing dataset files: each real folder and file once, inside its root.

Every folder-listing dataset goes through :class:`FileLister`:

* symbolic links are followed (data often lives on another disk), but a
  real folder is entered only once: a link leading back to a folder that is
  being listed (a loop, e.g. a link to a parent folder) or to a folder
  already listed through another path is skipped;
* a real file (same device and inode, so symbolic and hard links alike) is
  listed once, under the first path met in listing order;
* the order is deterministic: in every folder its files (sorted by name)
  come before its sub-folders (sorted by name, each listed depth first),
  as :func:`os.walk` with sorted names gives;
* hidden files and folders (names starting with ``.``) are left out;
* whatever is skipped is counted and logged in one warning per kind
  (:meth:`FileLister.report`), naming examples and where the links point.

It also holds the checks shared by the datasets on ``data_root`` and on
paths read from annotation files.
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

FileId = Tuple[int, int]

SHOWN = 3


def _show(items: Sequence[str], total: int) -> str:
    """The first :data:`SHOWN` items, then how many more."""
    text = '; '.join(items[:SHOWN])
    return text + (f' (and {total - SHOWN} more)' if total > SHOWN else '')


def _stat_id(path: str) -> Optional[FileId]:
    """``(st_dev, st_ino)`` of what ``path`` points to, None if broken."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class FileLister:
    """Lists files under folders, following links but never twice.

    One lister is one scope: inside it every real folder is entered once and
    every real file is listed once (see the module docstring for the rules).
    Use a new lister per split, so that a file present in two splits stays
    in both (and is reported as such by the dataset).

    Args:
        owner (str): Named in the warnings (the dataset class).
        reserved (sequence[str]): Folders that are listed by the caller as
            roots of their own (the data root, split and class folders); a
            link inside the scope leading to one of them is skipped, so that
            e.g. a link to the data root inside a class folder does not pull
            the other classes in. Defaults to ``()``.
    """

    def __init__(self, owner: str, reserved: Sequence[str] = ()) -> None:
        self.owner = owner
        self._dirs: Dict[FileId, str] = {}
        self._reserved: Dict[FileId, str] = {}
        self._files: Dict[FileId, str] = {}
        self.file_ids: Dict[str, FileId] = {}
        self.loops: List[Tuple[str, str]] = []
        self.duplicate_dirs: List[Tuple[str, str, str]] = []
        self.duplicate_files: List[Tuple[str, str]] = []
        self.broken_links: List[Tuple[str, str]] = []
        for folder in reserved:
            folder_id = _stat_id(folder)
            if folder_id is not None and osp.isdir(folder):
                self._reserved.setdefault(folder_id, folder)

    def list(self,
             folder: str,
             extensions: Optional[Sequence[str]] = None,
             recursive: bool = True) -> Tuple[List[str], List[str]]:
        """Files under ``folder``: ``(matching, others)``.

        Args:
            folder (str): The folder to list.
            extensions (sequence[str], optional): Suffixes (case-insensitive)
                of the matching files; None matches every file.
            recursive (bool): Enter sub-folders. Defaults to True.

        Returns:
            tuple[list[str], list[str]]: Paths (``folder`` joined with the
            names met) of the matching files and of the other files.
        """
        exts = tuple(e.lower() for e in extensions) if extensions else None
        matching: List[str] = []
        others: List[str] = []
        folder_id = _stat_id(folder)
        if folder_id is None:
            return matching, others
        first = self._dirs.get(folder_id)
        if first is not None:
            self.duplicate_dirs.append((folder, osp.realpath(folder), first))
            return matching, others
        self._dirs[folder_id] = folder
        self._walk(folder, folder_id[0], exts, recursive, matching, others)
        return matching, others

    def _walk(self, folder: str, dev: int, exts: Optional[tuple],
              recursive: bool, matching: List[str],
              others: List[str]) -> None:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith('.')),
                             key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            if entry.is_dir():
                subdirs.append(entry)
            elif self._keep_file(entry, dev):
                match = exts is None or entry.name.lower().endswith(exts)
                (matching if match else others).append(entry.path)
        if not recursive:
            return
        for entry in subdirs:
            entry_id = self._enter(entry, folder)
            if entry_id is not None:
                self._walk(entry.path, entry_id[0], exts, recursive, matching,
                           others)

    def _enter(self, entry: os.DirEntry, parent: str) -> Optional[FileId]:
        """Id of a sub-folder to list, or None (recorded) if seen before."""
        entry_id = _stat_id(entry.path)
        if entry_id is None:
            return None
        first = self._dirs.get(entry_id, self._reserved.get(entry_id))
        if first is None:
            self._dirs[entry_id] = entry.path
            return entry_id
        target = osp.realpath(entry.path)
        parent_real = osp.realpath(parent)
        if parent_real == target or parent_real.startswith(
                target.rstrip(os.sep) + os.sep):
            self.loops.append((entry.path, target))
        else:
            self.duplicate_dirs.append((entry.path, target, first))
        return None

    def _keep_file(self, entry: os.DirEntry, dev: int) -> bool:
        """Whether a file entry is new in this scope (records why not)."""
        if entry.is_symlink():
            file_id = _stat_id(entry.path)
            if file_id is None:
                self.broken_links.append(
                    (entry.path, os.readlink(entry.path)))
                return True
        else:
            file_id = (dev, entry.inode())
        first = self._files.setdefault(file_id, entry.path)
        if first != entry.path:
            self.duplicate_files.append((entry.path, first))
            return False
        self.file_ids[entry.path] = file_id
        return True

    def report(self) -> None:
        """Log one warning per kind of skipped entry (nothing if none)."""
        who = self.owner
        if self.loops:
            shown = [f'{link!r} -> {target!r}' for link, target in self.loops]
            _warn(f'{who}: skipped {len(self.loops)} symbolic link(s) '
                  'looping back to a folder that contains them: '
                  f'{_show(shown, len(shown))}. Each file is listed once; '
                  'remove the link(s) to silence this warning.')
        if self.duplicate_dirs:
            shown = [f'{link!r} -> {target!r} (listed as {first!r})'
                     for link, target, first in self.duplicate_dirs]
            _warn(f'{who}: skipped {len(shown)} folder(s) already listed '
                  'under another path (reached through a link, or listed as '
                  f'a root of their own): {_show(shown, len(shown))}. Each '
                  'folder is listed once, under the path met first.')
        if self.duplicate_files:
            shown = [f'{path!r} (same file as {first!r})'
                     for path, first in self.duplicate_files]
            _warn(f'{who}: skipped {len(shown)} file(s) reached a second '
                  'time through a symbolic or hard link: '
                  f'{_show(shown, len(shown))}. Each file is listed once, '
                  'under the path met first.')
        if self.broken_links:
            shown = [f'{link!r} -> {target!r}'
                     for link, target in self.broken_links]
            _warn(f'{who}: {len(shown)} broken symbolic link(s) listed: '
                  f'{_show(shown, len(shown))}; reading them will fail. Fix '
                  'or remove the link(s).')


def _warn(message: str) -> None:
    print_log(message, logger='current', level=logging.WARNING)


def list_files(folder: str,
               extensions: Optional[Sequence[str]] = None,
               owner: str = 'list_files',
               recursive: bool = True,
               reserved: Sequence[str] = ()) -> Tuple[List[str], List[str]]:
    """List one folder with a fresh :class:`FileLister` and report.

    Args:
        folder (str): The folder to list.
        extensions (sequence[str], optional): Suffixes of the matching
            files (case-insensitive); None matches every file.
        owner (str): Named in the warnings. Defaults to ``'list_files'``.
        recursive (bool): Enter sub-folders. Defaults to True.
        reserved (sequence[str]): See :class:`FileLister`.

    Returns:
        tuple[list[str], list[str]]: The matching and the other files.
    """
    lister = FileLister(owner, reserved=(folder, *reserved))
    found = lister.list(folder, extensions, recursive)
    lister.report()
    return found


def check_data_root(owner: str, data_root: Optional[str],
                    required: bool = True) -> str:
    """Check the ``data_root`` argument of a dataset class.

    Args:
        owner (str): The dataset class, named in the messages.
        data_root (str, optional): The value given.
        required (bool): ``''`` is refused too (the dataset has nothing to
            list without a root). Otherwise ``''`` means "no root" and is
            returned as is. Defaults to True.

    Returns:
        str: ``data_root`` as a string.

    Raises:
        ValueError: ``data_root`` is None (or empty when required).
        FileNotFoundError: ``data_root`` is given but is not a folder.
    """
    how = ('set data_root in the config to the dataset folder, e.g. '
           '--cfg-options train_dataloader.dataset.data_root=/path/to/data')
    if data_root is None:
        empty = '' if required else (
            ", or data_root='' for paths relative to the current folder "
            '(annotation files: to their own folder)')
        raise ValueError(f'{owner}: data_root is None; {how}{empty}.')
    data_root = os.fspath(data_root)
    if not data_root:
        if required:
            raise ValueError(f'{owner}: data_root is empty; {how}.')
        return data_root
    if not osp.isdir(data_root):
        what = 'is not a folder' if osp.exists(data_root) else (
            'does not exist')
        where = '' if osp.isabs(data_root) else (
            f' (relative to {os.getcwd()!r})')
        raise FileNotFoundError(
            f'{owner}: data_root {data_root!r} {what}{where}; {how}.')
    return data_root


def resolve_path(root: str, text: str) -> str:
    """``text`` (``~`` expanded) joined to ``root``, normalised."""
    return osp.normpath(osp.join(root, osp.expanduser(text)))


def is_inside(path: str, root: str) -> bool:
    """Whether a normalised ``path`` is ``root`` or below it (by text).

    Symbolic links are not resolved: a link inside ``root`` that points
    elsewhere counts as inside.
    """
    root = osp.normpath(osp.abspath(root))
    path = osp.normpath(osp.abspath(path))
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
