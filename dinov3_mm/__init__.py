"""dinov3_mm: an OpenMMLab-style toolkit for adapting DINOv3 models."""
from .engine.atomic_io import register_atomic_local_backend
from .engine.checkpoint_compat import register_safe_globals
from .engine.checkpoint_loaders import register_weights_only_loaders
from .version import __version__

# torch >= 2.6 loads with weights_only=True; let mmengine's resume read its
# own checkpoints without turning that off.
register_safe_globals()
# mmengine's checkpoint reads pass weights_only=True explicitly
register_weights_only_loaders()
# checkpoints are written to a temporary file and renamed into place
register_atomic_local_backend()

__all__ = ['__version__']
