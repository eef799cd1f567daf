"""Telling unreadable input images apart from other inference errors.

Two checks: :func:`image_header_problem` opens a file's header only (cheap,
done for every input before a model runs), and :func:`run_load_pipeline`
turns a decoding failure inside a test pipeline (e.g. truncated data, which
a header does not reveal) into an :class:`UnreadableImageError` naming the
file.
"""
import csv
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

from PIL import Image, UnidentifiedImageError

from dinov3_mm.utils.atomic_write import atomic_write_text
from dinov3_mm.utils.image_ops import read_image

#: ``(path, reason)`` pairs of files that could not be read.
Skipped = List[Tuple[str, str]]
#: Unreadable files named in one error message; the rest are counted.
MAX_LISTED = 5


class UnreadableImageError(ValueError):
    """An input image that cannot be read: missing, empty, not an image,
    corrupt or truncated.

    Args:
        path (str): The file.
        reason (str): Why it cannot be read.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'Cannot read image {path}: {reason}')
        self.path = path
        self.reason = reason


def image_header_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be an image, judged from its header only.

    Catches missing and empty files and files that are not in a known
    image format; truncated pixel data is found only when decoding.

    Returns:
        str | None: The reason, or None when the header reads.
    """
    if not osp.isfile(path):
        return 'file does not exist'
    if osp.getsize(path) == 0:
        return 'empty file (0 bytes)'
    try:
        with Image.open(path) as image:
            width, height = image.size
    except UnidentifiedImageError:
        return 'not an image file (unknown format or corrupt header)'
    except (OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        return f'corrupt header ({exc})'
    if width <= 0 or height <= 0:
        return f'header declares a {width}x{height} image'
    return None


def _decode_problem(path: str) -> Optional[str]:
    """Why decoding ``path`` fails, or None when it decodes."""
    try:
        read_image(path)
    except ValueError as exc:
        message = str(exc)
        prefix = f'Cannot read image {path}: '
        return message[len(prefix):] if message.startswith(prefix) else \
            message
    return None


def run_load_pipeline(pipeline: Callable[[dict], dict], data: dict) -> dict:
    """Run a test pipeline on one input; an image file that cannot be
    decoded raises :class:`UnreadableImageError`.

    Other pipeline errors pass unchanged: a failure is blamed on the file
    only when reading the file alone fails too.

    Raises:
        UnreadableImageError: ``data['img_path']`` cannot be read.
    """
    try:
        return pipeline(data)
    except ValueError as exc:
        path = data.get('img_path')
        if not isinstance(path, str) or isinstance(exc,
                                                   UnreadableImageError):
            raise
        reason = _decode_problem(path)
        if reason is None:
            raise
        raise UnreadableImageError(path, reason) from exc


def header_problems(
        paths: Sequence[str],
        problem: Callable[[str], Optional[str]] = image_header_problem
) -> Skipped:
    """``(path, reason)`` of every file whose header does not read.

    Args:
        paths (Sequence[str]): The files.
        problem (callable): Returns why one file cannot be read, or None.
            Defaults to :func:`image_header_problem`.
    """
    problems = []
    for path in paths:
        reason = problem(path)
        if reason is not None:
            problems.append((path, reason))
    return problems


def describe_unreadable(problems: Skipped) -> str:
    """A message naming the first unreadable files of ``problems`` (the
    rest are counted)."""
    (first, reason), rest = problems[0], problems[1:]
    message = f'Cannot read image {first}: {reason}'
    if rest:
        listed = '; '.join(f'{p} ({r})' for p, r in rest[:MAX_LISTED])
        more = len(rest) - MAX_LISTED
        message += (f'\n{len(rest)} more unreadable: {listed}' +
                    (f'; and {more} more' if more > 0 else ''))
    return message


def write_skipped_csv(skipped: Skipped, path: str) -> str:
    """Write one ``path,reason`` row per skipped file to ``path``
    (atomically; its folder is made); returns ``path``."""

    def write_rows(f) -> None:
        writer = csv.writer(f)
        writer.writerow(['path', 'reason'])
        writer.writerows(skipped)

    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_write_text(path, write_rows, newline='')
    return path
