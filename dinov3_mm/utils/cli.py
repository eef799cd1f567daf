"""Ending a command-line tool on a user's mistake with a message, not a traceback.

Every tool ends with ``cli_main(main)``. A :class:`UserError` (or another
exception type the tool names) prints ``error: <message>`` on stderr and exits
with the error's ``exit_code``; ``--debug`` on the command line (or
``DINOV3_MM_DEBUG=1``) lets the traceback through instead.
"""
import glob
import os
import os.path as osp
import sys
from typing import Callable, Optional, Sequence, Tuple, Type

#: Environment switch that shows tracebacks of user errors.
DEBUG_ENV = 'DINOV3_MM_DEBUG'
DEBUG_FLAG = '--debug'


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what
    to do.

    Args:
        message (str): One or two lines: what is wrong, then what to do.
        exit_code (int): Process exit code (2 for usage errors, else 1).
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
    """Whether ``--debug`` is in ``argv`` (default ``sys.argv``) or
    ``DINOV3_MM_DEBUG`` is set to a true value."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ.get(DEBUG_ENV, '').strip().lower()
    return DEBUG_FLAG in argv or env in ('1', 'true', 'yes', 'on')


def add_debug_argument(parser) -> None:
    """Add ``--debug`` to an argparse parser (so ``--help`` lists it)."""
    parser.add_argument(
        DEBUG_FLAG,
        action='store_true',
        help='show the full traceback of an error instead of one line '
        f'(also: {DEBUG_ENV}=1)')


def _similar_configs(path: str, root: str = 'configs') -> list:
    """Configs under ``root`` with the same file name as ``path``."""
    name = osp.basename(path)
    if not name or not osp.isdir(root):
        return []
    return sorted(glob.glob(osp.join(root, '**', name), recursive=True))[:3]


def require_config(path: str) -> str:
    """``path`` if it is a file, else a :class:`UserError` naming it.

    The message suggests configs of the same name under ``configs/`` of the
    working directory, if any.
    """
    if osp.isfile(path):
        return path
    what = 'is a folder, not a file' if osp.isdir(path) else 'does not exist'
    similar = _similar_configs(path)
    hint = (f'did you mean {" or ".join(similar)}?' if similar else
            'configs live under configs/<task>/ (e.g. '
            'configs/classification/); pass the path of a .py config file.')
    raise UserError(f'config {path} {what}; {hint}')


def require_checkpoint(path: str, option: Optional[str] = None) -> str:
    """``path`` if it is a file (or a Hugging Face folder when
    ``option == 'hf'``), else a :class:`UserError` naming it.

    Args:
        path (str): The checkpoint given on the command line.
        option (str, optional): The option that gave it (``'--resume'``),
            named in the message; ``'hf'`` accepts folders.
    """
    if osp.isfile(path) or (option == 'hf' and osp.isdir(path)):
        return path
    given = f'{option} {path}' if option and option != 'hf' else path
    what = 'is a folder, not a file' if osp.isdir(path) else 'does not exist'
    raise UserError(
        f'checkpoint {given} {what}; pass a .pth file written by '
        'tools/train.py (work_dirs/<config name>/epoch_N.pth) or a path to '
        'downloaded weights.')


def cli_main(main: Callable[[], object],
             user_errors: Tuple[Type[BaseException], ...] = ()) -> None:
    """Run a tool's ``main()``; turn expected errors into a short message.

    Args:
        main: The tool's entry point, called without arguments (it parses
            ``sys.argv`` itself). A non-zero int it returns is the exit
            code.
        user_errors: Exception types that, besides :class:`UserError`, are
            the user's to fix (e.g. ``CheckpointError``, ``ConfigError``).
            They exit with code 1 unless they carry an ``exit_code``.
    """
    expected = (UserError, *user_errors)
    try:
        code = main()
    except expected as exc:
        if debug_requested():
            raise
        message = str(exc).strip() or type(exc).__name__
        print(f'error: {message}', file=sys.stderr)
        if not isinstance(exc, UserError):
            print(f'(run again with {DEBUG_FLAG} for the traceback)',
                  file=sys.stderr)
        sys.exit(getattr(exc, 'exit_code', 1))
    if isinstance(code, int) and code:
        sys.exit(code)


def default_work_dir(config_path: str, *parts: str) -> str:
    """``./work_dirs/<config name>[/parts...]``, the tools' default output."""
    name = osp.splitext(osp.basename(config_path))[0]
    return osp.join('./work_dirs', name, *parts)
