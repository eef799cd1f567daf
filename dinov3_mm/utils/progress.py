"""Progress bars for long steps, shown only to a person at a terminal."""
import os
import sys
from typing import Iterable, Optional, TypeVar

from tqdm import tqdm

T = TypeVar('T')

#: Set to ``1`` to force progress bars on (e.g. under a pager), ``0`` off.
PROGRESS_ENV = 'DINOV3_MM_PROGRESS'


def progress_enabled(stream=None) -> bool:
    """Whether progress bars are shown: ``DINOV3_MM_PROGRESS`` when set,
    else whether ``stream`` (default ``sys.stderr``) is a terminal."""
    forced = os.environ.get(PROGRESS_ENV)
    if forced is not None and forced.strip() != '':
        return forced.strip().lower() not in ('0', 'false', 'no', 'off')
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, 'isatty', None)
    return bool(isatty and isatty())


def track(iterable: Iterable[T],
          desc: str,
          total: Optional[int] = None,
          unit: str = 'it',
          enabled: Optional[bool] = None) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar with counts, rate and ETA.

    Args:
        iterable: What to iterate over.
        desc (str): What the step does, e.g. ``'k-NN: extracting features'``.
        total (int, optional): Number of items, when ``len()`` cannot tell.
        unit (str): Name of one item (``'img'``, ``'batch'``, ``'slice'``).
        enabled (bool, optional): Force the bar on or off; by default it is
            shown only when :func:`progress_enabled` says so.

    Returns:
        An iterable over the same items in the same order.
    """
    if enabled is None:
        enabled = progress_enabled()
    if not enabled:
        return iterable
    if total is None and hasattr(iterable, '__len__'):
        total = len(iterable)
    return tqdm(iterable, desc=desc, total=total, unit=unit,
                dynamic_ncols=True, leave=False, file=sys.stderr)
