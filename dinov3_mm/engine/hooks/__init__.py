"""Hooks registered in the ``dinov3_mm`` scope."""
from .cls_plot_hook import ClsPlotHook

__all__ = ['ClsPlotHook']
