"""High-level APIs: model building, inference and feature extraction."""
from .features import extract_features
from .inference import inference_model, init_model

__all__ = ['init_model', 'inference_model', 'extract_features']
