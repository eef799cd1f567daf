"""Let mmengine checkpoints load with ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: its
unpickler only rebuilds tensors, containers and globals that were explicitly
allow-listed. mmengine 0.10.7 calls ``torch.load`` without the argument
(``Runner.resume``, ``Runner.load_checkpoint``, ``load_checkpoint``), and its
checkpoints pickle more than tensors, so resuming fails with
``Unsupported global``. :func:`register_safe_globals` allow-lists exactly what
those checkpoints contain; ``weights_only`` stays on, so a checkpoint still
cannot run arbitrary code.

What an mmengine checkpoint holds besides tensors, found by training, saving
and loading with ``weights_only=True`` (see ``tests/engine/test_resume.py``;
``tests/utils/test_safe_globals.py`` tests the allow-list itself):

* ``message_hub.log_scalars``: :class:`mmengine.logging.HistoryBuffer`
  objects, whose state holds numpy arrays (``float64`` values, ``int64``
  counts) and, through ``HistoryBuffer.__getstate__``, the statistics methods
  ``HistoryBuffer.min/max/current/mean``. Pickle stores those methods as
  ``builtins.getattr(HistoryBuffer, 'min')``; allow-listing the real
  ``getattr`` would let a checkpoint reach any attribute of any allowed
  object, so a stand-in that only returns HistoryBuffer's statistics
  methods is registered under that name instead.
* ``message_hub.runtime_info`` (``eta``, ``val/<metric>``, best scores):
  numpy scalars, i.e. ``numpy.core.multiarray.scalar`` plus a dtype.
* numpy arrays and dtypes: ``numpy.core.multiarray._reconstruct``,
  ``numpy.ndarray``, ``numpy.dtype`` and the per-dtype classes of
  ``numpy.dtypes`` (numpy >= 1.25 builds a dtype's state on its class).
* ``meta.dataset_meta`` and ``runtime_info['dataset_meta']``: a dict nested
  in a config's ``metainfo=dict(...)`` stays a
  :class:`mmengine.config.ConfigDict`.
* ``param_schedulers``: ``collections.Counter`` (``MultiStepLR`` milestones)
  and ``collections.OrderedDict`` are allowed by torch already.
"""
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch

from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version

__all__ = ['register_safe_globals', 'mmengine_safe_globals']

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# numpy dtypes whose arrays or scalars mmengine checkpoints hold:
# HistoryBuffer values and counts (float64 and int64, int32 where that is the
# platform's default integer) and metric results that metrics return as numpy
# scalars (float32 from ``np.float32`` means, float64 from ``np.mean``), which
# end up in ``runtime_info`` as ``val/<metric>`` and ``best_score``.
# Object, void and string dtypes are deliberately absent.
_NUMPY_DTYPE_NAMES = ('int32', 'int64', 'float32', 'float64')

_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` during weights-only unpickling.

    Only resolves the statistics methods of
    :class:`~mmengine.logging.HistoryBuffer`, which is how pickle stores
    ``HistoryBuffer._statistics_methods``.

    Args:
        obj (Any): The object pickle wants an attribute of.
        name (str): The attribute name.

    Returns:
        Callable: ``HistoryBuffer.<name>``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if obj is HistoryBuffer and isinstance(name, str):
        allowed = set(_DEFAULT_STATISTICS)
        allowed.update(
            key for key, fn in HistoryBuffer._statistics_methods.items()
            if vars(HistoryBuffer).get(key) is fn)
        if name in allowed:
            return vars(HistoryBuffer)[name]
    raise pickle.UnpicklingError(
        f'weights_only load: getattr({obj!r}, {name!r}) is not allowed; '
        'dinov3_mm only allows getattr(HistoryBuffer, <statistics method>) '
        'as written by mmengine checkpoints.')


def _supports_named_globals() -> bool:
    """Whether ``add_safe_globals`` accepts ``(object, 'full.path')``."""
    return digit_version(torch.__version__) >= digit_version('2.6.0')


def _numpy_multiarray():
    """The numpy module that holds ``_reconstruct`` and ``scalar``."""
    core = getattr(np, '_core', None)
    multiarray = getattr(core, 'multiarray', None) if core else None
    if multiarray is None or not hasattr(multiarray, '_reconstruct'):
        multiarray = np.core.multiarray
    return multiarray


def mmengine_safe_globals() -> List[SafeGlobal]:
    """The globals an mmengine checkpoint needs under ``weights_only=True``.

    Returns:
        list: Objects, or on torch >= 2.6 also ``(object, 'full.path')``
        pairs, suitable for :func:`torch.serialization.add_safe_globals`.
    """
    multiarray = _numpy_multiarray()
    dtype_classes = [type(np.dtype(name)) for name in _NUMPY_DTYPE_NAMES]
    safe: List[SafeGlobal] = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype]
    safe.extend(dict.fromkeys(dtype_classes))  # unique, ordered
    if _supports_named_globals():
        # numpy 1.x pickles ``numpy.core.multiarray.*``, numpy 2.x
        # ``numpy._core.multiarray.*``; accept both spellings.
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            safe.append((multiarray._reconstruct, f'{module}._reconstruct'))
            safe.append((multiarray.scalar, f'{module}.scalar'))
        safe.append((_history_buffer_getattr, 'builtins.getattr'))
    else:
        safe.extend([multiarray._reconstruct, multiarray.scalar])
    return safe


def register_safe_globals() -> None:
    """Allow-list mmengine's checkpoint classes for weights-only loading.

    Cheap and idempotent; ``dinov3_mm`` calls it on import. Does nothing on
    a torch without :func:`torch.serialization.add_safe_globals` (< 2.4).
    """
    serialization = torch.serialization
    if not hasattr(serialization, 'add_safe_globals'):
        return
    get_safe_globals = getattr(serialization, 'get_safe_globals', list)
    current = get_safe_globals()
    missing = [g for g in mmengine_safe_globals() if g not in current]
    if missing:
        serialization.add_safe_globals(missing)
