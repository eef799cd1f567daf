"""Hooks registered in the ``dinov3_mm`` scope."""
from .cls_plot_hook import ClsPlotHook
from .seg_vis_hook import SegVisHook

__all__ = ['ClsPlotHook', 'SegVisHook']
