"""Keeping setup chatter in the log file and off the console.

mmengine's Runner logs the environment, the whole config and the hook table
at INFO while it is built. :func:`file_only_below` hides records below a
level from the logger's console handlers (its file handlers still get
everything) until :func:`restore_console` is called.
"""
import logging
from typing import List, Optional, Sequence, Tuple

import torch


class _BelowLevelFilter(logging.Filter):
    """Drops records below ``level``."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


class _MessageFilter(logging.Filter):
    """Drops records whose message contains one of ``texts``."""

    def __init__(self, texts: Sequence[str]) -> None:
        super().__init__()
        self.texts = tuple(texts)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in self.texts)


ConsoleMute = List[Tuple[logging.Handler, logging.Filter]]


def console_handlers(logger: logging.Logger) -> List[logging.Handler]:
    """Handlers of ``logger`` that write to a stream, not to a file."""
    return [
        handler for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
    ]


def file_only_below(logger: logging.Logger,
                    level: int = logging.WARNING) -> ConsoleMute:
    """Hide records below ``level`` from the console handlers of ``logger``.

    Returns:
        list: What :func:`restore_console` needs to undo it.
    """
    muted = []
    for handler in console_handlers(logger):
        log_filter = _BelowLevelFilter(level)
        handler.addFilter(log_filter)
        muted.append((handler, log_filter))
    return muted


def file_only_matching(logger: logging.Logger,
                       texts: Sequence[str]) -> ConsoleMute:
    """Keep records containing one of ``texts`` off the console handlers
    of ``logger`` (the log file still gets them); undo with
    :func:`restore_console`."""
    muted = []
    for handler in console_handlers(logger):
        log_filter = _MessageFilter(texts)
        handler.addFilter(log_filter)
        muted.append((handler, log_filter))
    return muted


def restore_console(muted: Optional[ConsoleMute]) -> None:
    """Undo :func:`file_only_below`."""
    for handler, log_filter in muted or ():
        handler.removeFilter(log_filter)


def runtime_environment(env_cfg: dict, randomness: dict, seed,
                        launcher: str, distributed: bool,
                        world_size: int) -> dict:
    """The "Runtime environment" entries of the run's log.

    Like mmengine's, but the process count is named ``GPU number`` only
    when CUDA is available (``Processes`` otherwise).
    """
    entries = dict(env_cfg or {})
    entries.update(randomness or {})
    entries['seed'] = seed
    entries['Distributed launcher'] = launcher
    entries['Distributed training'] = distributed
    name = 'GPU number' if torch.cuda.is_available() else 'Processes'
    entries[name] = world_size
    return entries
