"""dinov3_mm: an OpenMMLab-style toolkit for adapting DINOv3 models."""
from .engine.checkpoint_compat import register_safe_globals
from .version import __version__

# torch >= 2.6 loads with weights_only=True; let mmengine's resume read its
# own checkpoints without turning that off.
register_safe_globals()

__all__ = ['__version__']
