"""Parity of an exported ONNX file with PyTorch, and its report.

Call graph::

    check_parity(wrapper, onnx_path, inputs, task) -> report dict
    ├── DeployWrapper(model) under no_grad vs run_onnx (onnxruntime, CPU)
    └── raises ParityError beyond atol / min_cosine / min_agreement
    write_parity_report(report, path) -> path.json + path.md
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from .det_parity import MIN_IOU, detection_parity
from .errors import ParityError
from .export_wrapper import DeployWrapper, as_wrapper


def run_onnx(onnx_path: str, inputs: Union[Tensor, np.ndarray]
             ) -> Dict[str, np.ndarray]:
    """Outputs by name from onnxruntime on the CPU."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts,
                                providers=['CPUExecutionProvider'])
    x = inputs.detach().cpu().numpy() if isinstance(inputs, Tensor) else inputs
    outs = sess.run(None, {'input': x.astype(np.float32)})
    return {o.name: v for o, v in zip(sess.get_outputs(), outs)}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    if denom == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(a @ b / denom)


def check_parity(model_or_wrapper: nn.Module,
                 onnx_path: str,
                 inputs: Tensor,
                 task: Optional[str] = None,
                 atol: float = 1e-4,
                 min_cosine: float = 0.9999,
                 min_agreement: Optional[float] = None,
                 raise_on_fail: bool = True,
                 min_iou: Optional[float] = MIN_IOU) -> dict:
    """Compare onnxruntime (CPU) with PyTorch on preprocessed images.

    Args:
        model_or_wrapper (nn.Module): The exported model (already merged if
            it had LoRA) or its :class:`DeployWrapper`.
        onnx_path (str): Exported file.
        inputs (Tensor): Normalised ``(B, 3, H, W)`` images at the export
            size.
        task (str, optional): Detected if None.
        atol (float): Largest allowed absolute difference of the float
            outputs (``probs`` / ``logits`` / ``embeddings``).
        min_cosine (float): Smallest allowed cosine similarity of the float
            outputs.
        min_agreement (float, optional): Smallest allowed top-1 (or
            per-pixel mask) agreement; not checked when None.
        raise_on_fail (bool): Raise :class:`ParityError` on failure.
        min_iou (float, optional): Detection: smallest mean box / mask IoU
            of matched detections; not checked when None. Defaults to
            :data:`~dinov3_mm.deploy.det_parity.MIN_IOU`.

    Returns:
        dict: ``onnx``, ``task``, ``batch``, ``input_shape``, tolerances,
        ``outputs`` (per name: ``max_abs_diff``, ``cosine``; ``top1_agreement``
        for probs, ``mask_agreement`` for class maps; detection: see
        :mod:`~dinov3_mm.deploy.det_parity`), ``passed`` and ``failures``;
        for detection also ``speed`` (:func:`speed_report`).
    """
    wrapper = as_wrapper(model_or_wrapper, task).eval()
    with torch.no_grad():
        ref = wrapper(inputs)
    ref = ref if isinstance(ref, tuple) else (ref, )
    got = run_onnx(onnx_path, inputs)
    outputs, failures = {}, []
    if wrapper.task == 'detection':
        outputs, failures = detection_parity(
            {n: t.detach().cpu().numpy()
             for n, t in zip(wrapper.output_names, ref)}, got, atol,
            min_agreement, min_iou)
    for name, ref_t in zip(() if wrapper.task == 'detection' else
                           wrapper.output_names, ref):
        r = ref_t.detach().cpu().numpy()
        o = got[name]
        if r.shape != o.shape:
            failures.append(f'{name}: shape {o.shape} != {r.shape}')
            outputs[name] = dict(shape=list(o.shape))
            continue
        entry: dict = dict(shape=list(r.shape))
        if name == 'class_map':
            entry['mask_agreement'] = float((r == o).mean())
            if (min_agreement is not None
                    and entry['mask_agreement'] < min_agreement):
                failures.append(f'{name}: mask agreement '
                                f"{entry['mask_agreement']:.6f} < "
                                f'{min_agreement}')
        else:
            diff = np.abs(r.astype(np.float64) - o.astype(np.float64))
            entry['max_abs_diff'] = float(diff.max()) if diff.size else 0.0
            entry['cosine'] = _cosine(r, o)
            if entry['max_abs_diff'] > atol:
                failures.append(f"{name}: max abs diff "
                                f"{entry['max_abs_diff']:.3g} > atol {atol}")
            if entry['cosine'] < min_cosine:
                failures.append(f"{name}: cosine {entry['cosine']:.6f} < "
                                f'{min_cosine}')
            if name == 'probs':
                entry['top1_agreement'] = float(
                    (r.argmax(1) == o.argmax(1)).mean())
                if (min_agreement is not None
                        and entry['top1_agreement'] < min_agreement):
                    failures.append(f'{name}: top-1 agreement '
                                    f"{entry['top1_agreement']:.4f} < "
                                    f'{min_agreement}')
        outputs[name] = entry
    report = dict(onnx=osp.abspath(onnx_path), task=wrapper.task,
                  batch=int(inputs.shape[0]),
                  input_shape=list(inputs.shape), atol=atol,
                  min_cosine=min_cosine, min_agreement=min_agreement,
                  outputs=outputs, passed=not failures, failures=failures)
    if wrapper.task == 'detection':
        report['speed'] = speed_report(wrapper, onnx_path, inputs[:1])
    if failures and raise_on_fail:
        raise ParityError(f'ONNX parity failed for {onnx_path}: '
                          + '; '.join(failures), report)
    return report


def speed_report(wrapper: nn.Module, onnx_path: str, inputs: Tensor,
                 repeats: int = 3) -> dict:
    """Median seconds per batch of eager PyTorch and onnxruntime (CPU, one
    thread each), after one warm-up run; informative, never a failure.

    Returns:
        dict: ``batch``, ``eager_s``, ``onnxruntime_s`` and ``ratio``
        (onnxruntime / eager).
    """
    import time

    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts,
                                providers=['CPUExecutionProvider'])
    feed = {'input': inputs.detach().cpu().numpy().astype(np.float32)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def median(run) -> float:
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    try:
        with torch.no_grad():
            eager = median(lambda: wrapper(inputs))
        onnx_s = median(lambda: sess.run(None, feed))
    finally:
        torch.set_num_threads(threads)
    return dict(batch=int(inputs.shape[0]), eager_s=eager,
                onnxruntime_s=onnx_s, ratio=onnx_s / eager if eager else None)


def write_parity_report(report: dict, path: str) -> Tuple[str, str]:
    """Write ``report`` as JSON and a markdown table next to it.

    Args:
        report (dict): From :func:`check_parity`.
        path (str): JSON file; the table goes to the same stem + ``.md``.

    Returns:
        tuple[str, str]: The JSON and markdown paths.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    stem = path[:-5] if path.endswith('.json') else path
    json_path, md_path = stem + '.json', stem + '.md'
    with open(json_path, 'w') as f:
        json.dump(report, f, indent=2)
    cols = ('max_abs_diff', 'cosine', 'top1_agreement', 'mask_agreement',
            'agreement', 'mean_iou', 'min_iou')
    lines = [
        f"# ONNX parity: {osp.basename(report['onnx'])}", '',
        f"task `{report['task']}`, input {report['input_shape']}, atol "
        f"{report['atol']}, min cosine {report['min_cosine']}: "
        f"**{'PASS' if report['passed'] else 'FAIL'}**", '',
        '| output | ' + ' | '.join(cols) + ' |',
        '|---' * (len(cols) + 1) + '|',
    ]
    for name, entry in report['outputs'].items():
        cells = []
        for c in cols:
            v = entry.get(c)
            cells.append('-' if v is None else
                         (f'{v:.3g}' if c == 'max_abs_diff' else f'{v:.6f}'))
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    for failure in report['failures']:
        lines.append(f'\n- {failure}')
    with open(md_path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return json_path, md_path


def accuracy_drop(onnx_path: str, model: nn.Module, inputs: torch.Tensor,
                  labels: Sequence[int]) -> dict:
    """Top-1 accuracy of PyTorch and of the ONNX file on labelled images.

    Args:
        onnx_path (str): The exported classifier.
        model (nn.Module): The PyTorch classifier (fp32).
        inputs (Tensor): Its normalised images.
        labels (Sequence[int]): Their true classes.

    Returns:
        dict: ``images``, ``accuracy_pytorch_fp32``, ``accuracy_onnx`` and
        ``accuracy_drop`` (fractions).
    """
    with torch.no_grad():
        ref = DeployWrapper(model, 'classification')(inputs).numpy()
    got = run_onnx(onnx_path, inputs)['probs']
    labels = np.asarray(labels)
    acc_ref = float((ref.argmax(1) == labels).mean())
    acc_onnx = float((got.argmax(1) == labels).mean())
    return dict(images=len(labels), accuracy_pytorch_fp32=acc_ref,
                accuracy_onnx=acc_onnx, accuracy_drop=acc_ref - acc_onnx)
