"""dinov3_mm: an OpenMMLab-style toolkit for adapting DINOv3 models."""
try:
    import mmcv  # noqa: F401  (full mmcv or mmcv-lite, see setup.py)
except ImportError as exc:
    raise ImportError(
        'dinov3_mm needs mmcv 2.1: either the full mmcv (with compiled ops, '
        "as mmseg/mmdet use) or mmcv-lite: pip install 'mmcv-lite>=2.1,<2.2' "
        "(or install dinov3_mm with its lite extra: pip install '.[lite]'). "
        f'Importing mmcv said: {exc}') from None
from .engine.atomic_io import register_atomic_local_backend
from .engine.checkpoint_loaders import register_weights_only_loaders
from .utils.safe_globals import register_safe_globals
from .version import __version__

# torch >= 2.6 loads with weights_only=True; let mmengine's resume read its
# own checkpoints without turning that off.
register_safe_globals()
# mmengine's checkpoint reads pass weights_only=True explicitly
register_weights_only_loaders()
# checkpoints are written to a temporary file and renamed into place
register_atomic_local_backend()

__all__ = ['__version__']
