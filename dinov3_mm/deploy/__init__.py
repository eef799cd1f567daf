"""Deployment: ONNX export with verified parity, Triton model repositories.

- :mod:`.export_wrapper`: :class:`DeployWrapper`, the plain-tensor module
  that is exported (normalised NCHW batch in, probabilities / class map and
  logits / top-k detections / embeddings out).
- :mod:`.det_export`: the detector's top-k outputs (boxes, scores, labels,
  mask logits) without control flow.
- :mod:`.det_parity`: detection parity by matched detections (scores,
  labels, box and mask IoU).
- :mod:`.onnx_export`: :func:`export_onnx` (LoRA merge, dynamic batch / H-W,
  fp32 / fp16 with overflow-safe nodes / int8), graph checks.
- :mod:`.parity`: :func:`check_parity` (PyTorch vs onnxruntime) and its
  report.
- :mod:`.parity_inputs`: the parity images, through the test pipeline.
- :mod:`.errors`: :class:`ExportError`, :class:`ParityError`.
- :mod:`.serving_spec`: the served preprocessing read from a config, and
  its size limits.
- :mod:`.triton_repo`: :func:`write_triton_repository` (ONNX model,
  Python-backend pre/postprocessing, ensemble).
- :mod:`.deployment`: :func:`deploy`, what ``tools/deploy.py`` runs.
- :mod:`.server`: :class:`TritonServer`, a local ``tritonserver`` on
  loopback (``python -m dinov3_mm.deploy serve REPO``).
- :mod:`.client`: :class:`ImageClient` and load generation.
"""
from .errors import ExportError, ParityError
from .export_wrapper import OUTPUT_NAMES, TASKS, DeployWrapper, detect_task
from .onnx_export import (CONTROL_FLOW_OPS, PRECISIONS, check_graph,
                          control_flow_nodes, export_onnx,
                          fp16_overflow_nodes)
from .parity import check_parity, run_onnx, write_parity_report
from .parity_inputs import preprocess_images
from .serving_spec import serving_limits, serving_spec
from .triton_repo import model_names, write_triton_repository

__all__ = [
    'CONTROL_FLOW_OPS', 'OUTPUT_NAMES', 'PRECISIONS', 'TASKS',
    'DeployWrapper', 'ExportError', 'ParityError', 'check_graph',
    'check_parity', 'control_flow_nodes', 'detect_task', 'export_onnx',
    'fp16_overflow_nodes', 'preprocess_images', 'run_onnx',
    'write_parity_report', 'serving_limits', 'serving_spec', 'model_names',
    'write_triton_repository'
]
