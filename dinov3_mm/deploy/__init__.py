"""Deployment: ONNX export of dinov3_mm models with verified parity.

See :mod:`dinov3_mm.deploy.export`: :func:`export_onnx` (LoRA merge, fixed
spatial size, optional dynamic batch, fp32 / fp16 / int8),
:func:`check_parity` (onnxruntime vs PyTorch) and
:func:`write_parity_report`.
"""
from .export import (CONTROL_FLOW_OPS, OUTPUT_NAMES, PRECISIONS, TASKS,
                     DeployWrapper, ExportError, ParityError, check_graph,
                     check_parity, control_flow_nodes, detect_task,
                     export_onnx, preprocess_images, run_onnx,
                     write_parity_report)

__all__ = [
    'CONTROL_FLOW_OPS', 'OUTPUT_NAMES', 'PRECISIONS', 'TASKS',
    'DeployWrapper', 'ExportError', 'ParityError', 'check_graph',
    'check_parity', 'control_flow_nodes', 'detect_task', 'export_onnx',
    'preprocess_images', 'run_onnx', 'write_parity_report'
]
