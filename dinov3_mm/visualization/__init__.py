"""Visualisation helpers: classification plots, training curves, PCA maps,
segmentation overlays, pictures of single samples and predictions,
curves of logged scalars, detections and COCO PR curves.

matplotlib is imported only when a plot is drawn.
"""
from .cls_plots import plot_confusion_matrix, plot_pr_curves, plot_roc_curves
from .curves import load_scalars, plot_training_curves
from .det_plots import draw_detections, plot_det_pr_curves
from .log_curves import plot_scalar_curves
from .packed_samples import (draw_packed_sample, draw_prediction,
                             find_normalization, inputs_to_image)
from .pca import pca_rgb
from .sample_drawing import caption_image, draw_boxes, mask_panel
from .seg_overlay import (colorize_mask, compare_panel, default_palette,
                          overlay_mask)

__all__ = [
    'plot_confusion_matrix', 'plot_pr_curves', 'plot_roc_curves',
    'load_scalars', 'plot_training_curves', 'pca_rgb', 'colorize_mask',
    'compare_panel', 'default_palette', 'overlay_mask', 'plot_scalar_curves',
    'draw_packed_sample', 'draw_prediction', 'find_normalization',
    'inputs_to_image', 'caption_image', 'draw_boxes', 'mask_panel',
    'draw_detections', 'plot_det_pr_curves'
]
