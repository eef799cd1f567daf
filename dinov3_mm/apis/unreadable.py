"""Telling unreadable input images apart from other inference errors.

Two checks: :func:`image_header_problem` opens a file's header only (cheap,
done for every input before a model runs), and :func:`run_load_pipeline`
turns a decoding failure inside a test pipeline (e.g. truncated data, which
a header does not reveal) into an :class:`UnreadableImageError` naming the
file.
"""
import os.path as osp
from typing import Callable, Optional

from PIL import Image, UnidentifiedImageError

from dinov3_mm.utils.image_ops import read_image


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
