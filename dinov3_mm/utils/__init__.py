"""Pure helpers that import nothing else from dinov3_mm.

Submodules: ``atomic_write`` (crash-safe file writes), ``checkpoint_io``
(weights-only reads), ``cli`` (one-line errors of the command-line tools),
``image_ops``, ``progress`` (progress bars), ``quiet_init``, ``safe_globals``
(weights-only allow-list of mmengine checkpoints), ``sharded_checkpoint``
(the files of FSDP checkpoints), ``state_dict_loading``.
Plugins import the atomic writers, ``track`` and the CLI helpers from here.
"""
from .atomic_write import atomic_write, atomic_write_bytes, atomic_write_text
from .cli import UserError, add_debug_argument, cli_main
from .progress import progress_enabled, track

__all__ = [
    'atomic_write', 'atomic_write_bytes', 'atomic_write_text', 'UserError',
    'add_debug_argument', 'cli_main', 'progress_enabled', 'track'
]
