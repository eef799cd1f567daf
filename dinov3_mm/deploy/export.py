"""ONNX export of dinov3_mm models with a verified PyTorch/onnxruntime parity.

Call graph::

    export_onnx(model, task, out_path, ...)
    ├── merge_lora (if adapters) -> eval -> DeployWrapper(model, task)
    ├── torch.onnx.export(dynamo=False) under no_grad
    │     (unsupported op -> ExportError naming the op and its module)
    ├── onnx.checker.check_model + no If / Loop nodes (check_graph)
    └── precision: 'fp32' | 'fp16' (onnxruntime.transformers.float16)
                   | 'int8' (onnxruntime.quantization.quantize_dynamic)
    check_parity(wrapper, onnx_path, inputs, task) -> report dict
    └── raises ParityError beyond atol / min_cosine / min_agreement
    write_parity_report(report, path) -> path.json + path.md

Only the batch axis can be dynamic. The spatial size is fixed at export:
the RoPE ``sin``/``cos`` tables are computed in Python from the patch grid
(the traced sizes are turned into ints), so tracing stores them as constants
for that grid, without ``If`` nodes, and the
segmentation necks / adapters (e.g. the ViT-Adapter's deformable-attention
``spatial_shapes``) likewise hold the per-level sizes as Python ints.
Export one file per input resolution.

The oneDNN linear fast path (:mod:`dinov3_mm.models.layers.linear`) is
skipped while tracing (``torch.ops.mkldnn._linear_pointwise`` has no ONNX
symbolic), so every layer exports as a plain ``Gemm``/``MatMul``.
"""
import json
import os
import os.path as osp
import re
import tempfile
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

TASKS = ('classification', 'segmentation', 'features')
PRECISIONS = ('fp32', 'fp16', 'int8')
OUTPUT_NAMES = {
    'classification': ('probs', ),
    'segmentation': ('class_map', 'logits'),
    'features': ('embeddings', ),
}
#: Control-flow nodes refused in exported graphs.
CONTROL_FLOW_OPS = ('If', 'Loop')


class ExportError(RuntimeError):
    """The model cannot be exported (unsupported op, control flow, ...).

    Attributes:
        op (str, optional): The offending operator, when known.
        module (str, optional): Qualified name of the module calling it.
    """

    def __init__(self, message: str, op: Optional[str] = None,
                 module: Optional[str] = None):
        super().__init__(message)
        self.op = op
        self.module = module


class ParityError(AssertionError):
    """ONNX outputs differ from PyTorch beyond the tolerance.

    Attributes:
        report (dict): The :func:`check_parity` report.
    """

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------- wrapper
def detect_task(model: nn.Module) -> str:
    """``'segmentation'`` (a ``decode_head``), ``'classification'`` (a
    ``head``) or ``'features'`` (a bare backbone or anything else)."""
    if hasattr(model, 'decode_head'):
        return 'segmentation'
    if hasattr(model, 'head') and hasattr(model, 'backbone'):
        return 'classification'
    return 'features'


class DeployWrapper(nn.Module):
    """Plain-tensor interface for export: normalised ``(B, 3, H, W)`` in.

    Outputs per task:

    - ``'classification'``: ``probs`` ``(B, K)``; softmax, or sigmoid when
      the head is multi-label (``head.multi_label``).
    - ``'segmentation'``: ``(class_map, logits)``, ``(B, H, W)`` int64 and
      ``(B, K, H, W)`` at input size; ``K == 1`` (binary) thresholds the
      sigmoid at ``threshold`` (default: the segmentor's).
    - ``'features'``: ``embeddings`` ``(B, C)``, the class token after the
      final norm (``forward_features()['x_norm_clstoken']``), L2-normalised
      too when ``l2_normalize``.

    Args:
        model (nn.Module): Classifier, segmentor or backbone.
        task (str, optional): One of :data:`TASKS`; detected if None.
        threshold (float, optional): Binary segmentation threshold.
        l2_normalize (bool): L2-normalise the embeddings. Defaults to False.
    """

    def __init__(self, model: nn.Module, task: Optional[str] = None,
                 threshold: Optional[float] = None,
                 l2_normalize: bool = False):
        super().__init__()
        task = task or detect_task(model)
        if task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}.')
        self.model = model
        self.task = task
        self.threshold = (threshold if threshold is not None else
                          getattr(model, 'threshold', 0.5))
        self.l2_normalize = l2_normalize
        head = getattr(model, 'head', None)
        self.multi_label = bool(getattr(head, 'multi_label', False))

    @property
    def output_names(self) -> Tuple[str, ...]:
        return OUTPUT_NAMES[self.task]

    def forward(self, inputs: Tensor):
        if self.task == 'classification':
            logits = self.model(inputs, mode='tensor')
            return logits.sigmoid() if self.multi_label else logits.softmax(1)
        if self.task == 'segmentation':
            logits = self.model(inputs, mode='tensor')
            if logits.shape[1] == 1:
                class_map = (logits.sigmoid() > self.threshold)[:, 0].long()
            else:
                class_map = logits.argmax(1)
            return class_map, logits
        return self._embeddings(inputs)

    def _embeddings(self, inputs: Tensor) -> Tensor:
        backbone = getattr(self.model, 'backbone', self.model)
        if hasattr(backbone, 'forward_features'):
            emb = backbone.forward_features(inputs)['x_norm_clstoken']
        else:
            out = backbone(inputs)
            emb = out[-1] if isinstance(out, (tuple, list)) else out
            if emb.ndim != 2:
                raise ExportError(
                    f'{type(backbone).__name__} has no forward_features and '
                    f'returns {emb.ndim}-D features; expected (B, C).')
        return F.normalize(emb, dim=-1) if self.l2_normalize else emb


def _as_wrapper(model: nn.Module, task: Optional[str]) -> DeployWrapper:
    if isinstance(model, DeployWrapper):
        if task is not None and task != model.task:
            raise ValueError(f'Wrapper task {model.task!r} != {task!r}.')
        return model
    return DeployWrapper(model, task)


# ---------------------------------------------------------------- export
def _prepare(model: nn.Module) -> nn.Module:
    """Merge LoRA adapters (in place) and switch to eval mode."""
    inner = model.model if isinstance(model, DeployWrapper) else model
    try:
        from dinov3_mm.models.lora import has_lora, merge_lora
        if has_lora(inner):
            merge_lora(inner)
    except ImportError:  # peft missing: no LoRA layers can exist either
        pass
    return model.eval()


def _locate_op(wrapper: nn.Module, dummy: Tensor,
               op: str) -> Optional[str]:
    """Qualified name of the module that first calls aten op ``op``."""
    from torch.utils._python_dispatch import TorchDispatchMode
    stack: List[str] = []
    found: List[str] = []
    names = {m: n for n, m in wrapper.named_modules()}
    target = op.split('::')[-1]

    class _Spy(TorchDispatchMode):

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func._schema.name.split('::')[-1]
            if not found and name.lstrip('_') == target.lstrip('_'):
                found.append(stack[-1] if stack else '')
            return func(*args, **(kwargs or {}))

    def enter(module, args) -> None:
        stack.append(names.get(module, type(module).__name__))

    def leave(module, args, output) -> None:  # None: output unchanged
        if stack:
            stack.pop()

    handles = []
    for module in wrapper.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    try:
        # with autograd on, the layers take their plain (exported) paths
        with torch.enable_grad(), _Spy():
            wrapper(dummy.detach().clone().requires_grad_(True))
    except Exception:  # best effort: the message alone still names the op
        pass
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None


def _scope_of(message: str, op: str) -> Optional[str]:
    """Module path of ``op`` from the "Torch IR graph at exception" dump."""
    for line in message.splitlines():
        if f'= {op}(' in line:
            match = re.search(r'scope: (\S+)', line)
            if match:
                # DeployWrapper::/pkg.Class::model/pkg.Class::backbone
                parts = re.findall(r'::(\w[\w.]*)', match.group(1))
                return '.'.join(parts) if parts else match.group(1)
    return None


def _export_error(exc: Exception, wrapper: nn.Module,
                  dummy: Tensor) -> ExportError:
    message = f'{type(exc).__name__}: {exc}'
    match = re.search(r"'?((?:aten|prim|onnx)::\w+)'?", str(exc))
    op = match.group(1) if match else None
    module = None
    python_op = re.search(r'Python operator (\w+)', str(exc))
    if python_op:
        op = python_op.group(1)
    elif op is not None:
        module = _scope_of(str(exc), op)
        if module is None and op.startswith('aten::'):
            module = _locate_op(wrapper, dummy, op)
    where = f" in module '{module}'" if module is not None else ''
    what = f"Unsupported op '{op}'{where}" if op else 'Export failed'
    return ExportError(f'{what} ({type(wrapper.model).__name__}, '
                       f'task {wrapper.task!r}): {message}', op=op,
                       module=module)


def control_flow_nodes(model) -> List[str]:
    """``'OpType:name'`` of every If / Loop node, subgraphs included."""
    import onnx
    if isinstance(model, str):
        model = onnx.load(model)
    found = []

    def visit(graph):
        for node in graph.node:
            if node.op_type in CONTROL_FLOW_OPS:
                found.append(f'{node.op_type}:{node.name}')
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    visit(attr.g)
                for g in attr.graphs:
                    visit(g)

    visit(model.graph)
    return found


def check_graph(path: str) -> None:
    """``onnx.checker`` and no control flow; raises :class:`ExportError`."""
    import onnx
    try:
        onnx.checker.check_model(path)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f'{path} fails onnx.checker: {exc}') from exc
    nodes = control_flow_nodes(path)
    if nodes:
        raise ExportError(f'{path} contains control-flow nodes, which break '
                          f'static deployment: {nodes}', op=nodes[0])


def export_onnx(model: nn.Module,
                task: Optional[str],
                out_path: str,
                input_size: Sequence[int] = (224, 224),
                batch_size: int = 1,
                opset: int = 17,
                dynamic_batch: bool = True,
                precision: str = 'fp32',
                dynamic_hw: bool = False,
                calibration: Optional[Tensor] = None) -> dict:
    """Export ``model`` (merged, eval, wrapped) to ONNX and check the graph.

    Args:
        model (nn.Module): Classifier, segmentor, backbone or
            :class:`DeployWrapper`. LoRA adapters are merged **in place**.
        task (str, optional): One of :data:`TASKS`; detected if None.
        out_path (str): Output ``.onnx`` file.
        input_size (tuple[int, int]): ``(H, W)``, fixed in the graph (see the
            module docstring); multiples of the patch size.
        batch_size (int): Batch of the tracing input. Defaults to 1.
        opset (int): ONNX opset. Defaults to 17.
        dynamic_batch (bool): Make axis 0 of input and outputs dynamic.
        precision (str): ``'fp32'``, ``'fp16'`` (weights and compute in
            fp16, fp32 inputs/outputs; nodes whose fp32 outputs overflow
            fp16 on ``calibration`` stay fp32) or ``'int8'`` (dynamic
            quantization of the weights). Defaults to ``'fp32'``.
        dynamic_hw (bool): Make the input height/width (and the spatial
            axes of segmentation outputs) dynamic. Models whose graph holds
            per-size constants (e.g. the ViT-Adapter's deformable attention)
            then fail the parity check at other sizes. Defaults to False.
        calibration (Tensor, optional): Preprocessed inputs for the fp16
            overflow scan; defaults to the random tracing input.

    Returns:
        dict: ``path`` (``out_path``) and ``fp32_nodes`` (nodes kept in fp32
        by the fp16 conversion; empty otherwise).

    Raises:
        ExportError: Unsupported op (named, with its module when found),
            checker failure or If / Loop nodes.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got '
                         f'{precision!r}.')
    wrapper = _as_wrapper(_prepare(model), task)
    wrapper.eval()
    device = next(iter(wrapper.parameters()), torch.empty(0)).device
    dummy = torch.randn(batch_size, 3, *input_size, device=device)
    names = wrapper.output_names
    axes = _dynamic_axes(names, dynamic_batch, dynamic_hw)
    out_dir = osp.dirname(osp.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    fp32_path = out_path
    if precision != 'fp32':
        fp32_path = osp.join(tempfile.mkdtemp(dir=out_dir), 'fp32.onnx')
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # shape checks in heads are traced as constants, as intended
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            warnings.filterwarnings('ignore', message='ONNX Preprocess')
            torch.onnx.export(wrapper, (dummy, ), fp32_path,
                              input_names=['input'], output_names=list(names),
                              dynamic_axes=axes, opset_version=opset,
                              do_constant_folding=True, dynamo=False)
    except ExportError:
        raise
    except Exception as exc:  # torch raises several unrelated types here
        raise _export_error(exc, wrapper, dummy) from exc
    check_graph(fp32_path)
    fp32_nodes: List[str] = []
    if precision == 'fp16':
        fp32_nodes = fp16_overflow_nodes(
            fp32_path, dummy if calibration is None else calibration)
        _to_fp16(fp32_path, out_path, fp32_nodes)
    elif precision == 'int8':
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(fp32_path, out_path, weight_type=QuantType.QInt8)
    if precision != 'fp32':
        os.remove(fp32_path)
        os.rmdir(osp.dirname(fp32_path))
        check_graph(out_path)
    return dict(path=out_path, fp32_nodes=fp32_nodes)


def _dynamic_axes(names: Sequence[str], batch: bool,
                  hw: bool) -> Optional[Dict[str, Dict[int, str]]]:
    if not (batch or hw):
        return None
    spatial = {'input': (2, 3), 'class_map': (1, 2), 'logits': (2, 3)}
    axes: Dict[str, Dict[int, str]] = {}
    for name in ('input', ) + tuple(names):
        axes[name] = {0: 'batch'} if batch else {}
        if hw and name in spatial:
            h, w = spatial[name]
            axes[name].update({h: 'height', w: 'width'})
    return axes


#: Largest finite fp16 value.
FP16_MAX = 65504.0


def fp16_overflow_nodes(onnx_path: str, inputs: Tensor,
                        margin: float = 2.0) -> List[str]:
    """Nodes whose fp32 outputs would overflow in fp16 on ``inputs``.

    Every float intermediate of the fp32 graph is made an output and run
    through onnxruntime once; a node is listed when one of its outputs is
    not finite or exceeds ``FP16_MAX / margin`` in magnitude.

    Args:
        onnx_path (str): The fp32 model.
        inputs (Tensor): Representative preprocessed inputs.
        margin (float): Head-room factor. Defaults to 2.

    Returns:
        list[str]: Node names, in graph order.
    """
    import onnx
    import onnxruntime as ort
    model = onnx.load(onnx_path)
    inferred = onnx.shape_inference.infer_shapes(model)
    present = {o.name for o in model.graph.output}
    for info in inferred.graph.value_info:
        if (info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                and info.name not in present):
            model.graph.output.append(info)
    names = [o.name for o in model.graph.output]
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=['CPUExecutionProvider'])
    x = inputs.detach().cpu().numpy().astype(np.float32)
    values = dict(zip(names, sess.run(names, {'input': x})))
    limit = FP16_MAX / margin
    bad = {
        name for name, v in values.items()
        if np.issubdtype(v.dtype, np.floating) and v.size and (
            not np.isfinite(v).all() or np.abs(v).max() > limit)
    }
    return [n.name for n in model.graph.node
            if any(o in bad for o in n.output)]


def _to_fp16(src: str, dst: str, keep_fp32: Sequence[str] = ()) -> None:
    import onnx
    try:
        from onnxruntime.transformers.float16 import \
            convert_float_to_float16
    except ImportError as exc:
        raise ExportError('fp16 export needs onnxruntime.transformers '
                          '(float16 converter).') from exc
    from onnxruntime.transformers.onnx_model import OnnxModel
    model = OnnxModel(
        convert_float_to_float16(onnx.load(src), keep_io_types=True,
                                 node_block_list=list(keep_fp32) or None))
    # the converter appends the input casts after their consumers
    model.topological_sort()
    onnx.save(model.model, dst)


# ---------------------------------------------------------------- parity
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
                 raise_on_fail: bool = True) -> dict:
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

    Returns:
        dict: ``onnx``, ``task``, ``batch``, ``input_shape``, tolerances,
        ``outputs`` (per name: ``max_abs_diff``, ``cosine``; ``top1_agreement``
        for probs, ``mask_agreement`` for class maps), ``passed`` and
        ``failures``.
    """
    wrapper = _as_wrapper(model_or_wrapper, task).eval()
    with torch.no_grad():
        ref = wrapper(inputs)
    ref = ref if isinstance(ref, tuple) else (ref, )
    got = run_onnx(onnx_path, inputs)
    outputs, failures = {}, []
    for name, ref_t in zip(wrapper.output_names, ref):
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
    if failures and raise_on_fail:
        raise ParityError(f'ONNX parity failed for {onnx_path}: '
                          + '; '.join(failures), report)
    return report


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
    cols = ('max_abs_diff', 'cosine', 'top1_agreement', 'mask_agreement')
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


def preprocess_images(model: nn.Module, images: Sequence[str],
                      cfg=None) -> Tensor:
    """Normalised batch of image files via a test pipeline and the model's
    data preprocessor.

    Args:
        model (nn.Module): Model with a ``data_preprocessor``.
        images (list[str]): Image paths.
        cfg (Config, optional): Config whose test pipeline is used; defaults
            to ``model.cfg`` (set by :func:`~dinov3_mm.apis.init_model`).
    """
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from dinov3_mm.apis.inference import build_test_pipeline
    cfg = cfg if cfg is not None else model.cfg
    init_default_scope(cfg.get('default_scope', 'dinov3_mm'))
    pipeline = build_test_pipeline(cfg)
    batch = pseudo_collate([pipeline(dict(img_path=p)) for p in images])
    with torch.no_grad():
        return model.data_preprocessor(batch, False)['inputs']
