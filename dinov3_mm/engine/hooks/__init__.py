"""Hooks registered in the ``dinov3_mm`` scope."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .cls_plot_hook import ClsPlotHook
from .det_vis_hook import DetVisHook
from .knn_hook import KNNEvalHook
from .logger_hook import EpochAwareLoggerHook
from .pred_draw_hook import PredDrawHook
from .runtime_info_hook import GroupLrRuntimeInfoHook
from .seg_vis_hook import SegVisHook
from .ssl_hooks import CollapseMonitorHook, DINOTeacherHook

__all__ = [
    'AtomicCheckpointHook', 'ClsPlotHook', 'SegVisHook', 'DetVisHook', 'KNNEvalHook',
    'DINOTeacherHook', 'CollapseMonitorHook', 'PredDrawHook',
    'EpochAwareLoggerHook', 'GroupLrRuntimeInfoHook'
]
