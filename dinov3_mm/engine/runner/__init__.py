"""Training and evaluation loops."""
from .cached_feature_loops import (CachedFeatureTrainLoop,
                                   CachedFeatureValLoop,
                                   extract_dataloader_features)
from .log_processor import GroupLrLogProcessor
from .resumable_loop import ResumableEpochBasedTrainLoop
from .strict_runner import StrictRunner

__all__ = [
    'CachedFeatureTrainLoop', 'CachedFeatureValLoop',
    'extract_dataloader_features', 'GroupLrLogProcessor',
    'ResumableEpochBasedTrainLoop', 'StrictRunner'
]
