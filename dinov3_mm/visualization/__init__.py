"""Visualisation helpers: classification plots, training curves, PCA maps,
segmentation overlays.

matplotlib is imported only when a plot is drawn.
"""
from .cls_plots import plot_confusion_matrix, plot_pr_curves, plot_roc_curves
from .curves import load_scalars, plot_training_curves
from .pca import pca_rgb
from .seg_overlay import (colorize_mask, compare_panel, default_palette,
                          overlay_mask)

__all__ = [
    'plot_confusion_matrix', 'plot_pr_curves', 'plot_roc_curves',
    'load_scalars', 'plot_training_curves', 'pca_rgb', 'colorize_mask',
    'compare_panel', 'default_palette', 'overlay_mask'
]
