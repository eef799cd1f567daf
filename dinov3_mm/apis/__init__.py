"""High-level APIs: model building, inference and feature extraction."""
from .features import extract_features
from .inference import build_test_pipeline, inference_classifier, init_model
from .pca_features import run_pca_features
from dinov3_mm.utils.checkpoint_io import CheckpointError
from dinov3_mm.utils.state_dict_loading import CheckpointMismatchError

from .seg_inference import inference_segmentor, write_seg_outputs
from .task_inference import inference_model

__all__ = [
    'init_model', 'inference_model', 'extract_features', 'build_test_pipeline',
    'inference_classifier', 'inference_segmentor', 'write_seg_outputs',
    'run_pca_features',
    'CheckpointError', 'CheckpointMismatchError'
]
