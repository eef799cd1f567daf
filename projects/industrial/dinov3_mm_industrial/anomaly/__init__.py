"""PatchCore-style anomaly detection on frozen DINOv3 patch features."""
from .detector import DINOv3PatchCore
from .memory_bank import (greedy_coreset, nearest_neighbour_distance,
                          random_subsample, subsample_bank)
from .mvtec import (Category, TestImage, find_categories, load_category,
                    read_mask)
from .pipeline import run_anomaly_detection, score_category
from .smoothing import gaussian_blur, gaussian_kernel1d

__all__ = [
    'DINOv3PatchCore', 'greedy_coreset', 'nearest_neighbour_distance',
    'random_subsample', 'subsample_bank', 'Category', 'TestImage',
    'find_categories', 'load_category', 'read_mask', 'run_anomaly_detection',
    'score_category', 'gaussian_blur', 'gaussian_kernel1d'
]
