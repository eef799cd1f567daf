"""Which checkpoint ``--resume`` (without a path) continues from.

mmengine trusts ``work_dir/last_checkpoint``: when it is missing, training
silently starts over; when it is empty or names a file that is gone, resuming
fails with an unrelated error. :func:`find_resume_checkpoint` reads it, checks
that the named file loads and otherwise falls back to the newest checkpoint
in the work dir that does, saying why.
"""
import glob
import os.path as osp
import re
from typing import List, Optional, Tuple

from dinov3_mm.utils.checkpoint_io import CheckpointError, load_weights_only

LAST_CHECKPOINT = 'last_checkpoint'


def checkpoint_loads(path: str) -> bool:
    """Whether ``path`` is a complete checkpoint (read memory-mapped)."""
    try:
        load_weights_only(path, map_location='cpu', mmap=True)
    except (CheckpointError, OSError):
        return False
    return True


def _newest_first(work_dir: str) -> List[str]:
    """``*.pth`` files of the work dir, newest first (mtime, then step)."""

    def order(path: str) -> Tuple[float, int]:
        numbers = re.findall(r'\d+', osp.basename(path))
        return osp.getmtime(path), int(numbers[-1]) if numbers else -1

    paths = [p for p in glob.glob(osp.join(glob.escape(work_dir), '*.pth'))
             if osp.isfile(p)]
    return sorted(paths, key=order, reverse=True)


def _last_checkpoint_problem(work_dir: str) -> Tuple[Optional[str], str]:
    """The file ``last_checkpoint`` names, or None and what is wrong."""
    record = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(record):
        return None, f'{record} does not exist'
    with open(record) as f:
        target = f.read().strip()
    if not target:
        return None, f'{record} is empty'
    if not osp.isfile(target):
        return None, f'{record} names {target}, which does not exist'
    if not checkpoint_loads(target):
        return None, f'{record} names {target}, which does not load'
    return target, ''


def find_resume_checkpoint(work_dir: str) -> Tuple[Optional[str], str]:
    """The checkpoint to resume from, and a note when it is a fallback.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        tuple: ``(path, note)``. ``path`` is what ``last_checkpoint`` names
        when that loads, else the newest ``*.pth`` that loads, else None.
        ``note`` is empty in the first case, otherwise says what was wrong
        and what was picked (or that nothing was found).
    """
    target, problem = _last_checkpoint_problem(work_dir)
    if target is not None:
        return target, ''
    skipped = []
    for candidate in _newest_first(work_dir):
        if checkpoint_loads(candidate):
            note = (f'{problem}; resuming from the newest checkpoint in '
                    f'{work_dir} that loads: {candidate}')
            if skipped:
                note += f' (skipped, unreadable: {", ".join(skipped)})'
            return candidate, note
        skipped.append(osp.basename(candidate))
    note = f'{problem} and {work_dir} holds no checkpoint that loads'
    if skipped:
        note += f' (unreadable: {", ".join(skipped)})'
    return None, note + '; training starts from the beginning'

