"""Pure helpers that import nothing else from dinov3_mm.

Submodules: ``atomic_write`` (crash-safe file writes), ``checkpoint_io``
(weights-only reads), ``image_ops``, ``quiet_init``, ``safe_globals``
(weights-only allow-list of mmengine checkpoints), ``state_dict_loading``.
Plugins import the atomic writers from here.
"""
from .atomic_write import atomic_write, atomic_write_bytes, atomic_write_text

__all__ = ['atomic_write', 'atomic_write_bytes', 'atomic_write_text']
