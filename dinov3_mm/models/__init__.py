"""Models: backbones, necks, heads, losses and top-level models."""
from .backbones import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .distill import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .lora import apply_lora, merge_lora  # noqa: F401
from .losses import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .ssl import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .tta import ClsTTAModel
from .normalization import NORMALIZATION, get_normalization, resolve_mean_std
from . import (backbones, classifiers, data_preprocessors, detectors,
               distill, heads, losses, necks, segmentors, ssl)

__all__ = [
    name for package in (backbones, classifiers, data_preprocessors,
                         detectors, distill, heads, losses, necks, segmentors,
                         ssl)
    for name in package.__all__
] + ['apply_lora', 'merge_lora', 'NORMALIZATION', 'get_normalization',
     'resolve_mean_std', 'ClsTTAModel']
