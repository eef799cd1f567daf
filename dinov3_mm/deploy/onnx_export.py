"""ONNX export of dinov3_mm models: graph checks and fp16 / int8 conversion.

Call graph::

    export_onnx(model, task, out_path, ...)
    ├── merge_lora (if adapters) -> eval -> DeployWrapper(model, task)
    ├── torch.onnx.export(dynamo=False) under no_grad
    │     (unsupported op -> ExportError naming the op and its module)
    ├── onnx.checker.check_model + no If / Loop nodes (check_graph)
    └── precision: 'fp32' | 'fp16' (onnxruntime.transformers.float16)
                   | 'int8' (onnxruntime.quantization.quantize_dynamic)

The parity of the result with PyTorch is checked by
:mod:`dinov3_mm.deploy.parity`.

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
import os
import os.path as osp
import re
import tempfile
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import ExportError
from .export_wrapper import DeployWrapper, as_wrapper

PRECISIONS = ('fp32', 'fp16', 'int8')
#: Control-flow nodes refused in exported graphs.
CONTROL_FLOW_OPS = ('If', 'Loop')


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
    wrapper = as_wrapper(_prepare(model), task)
    wrapper.eval()
    if wrapper.task == 'detection' and dynamic_hw:
        raise ExportError('A detector is exported at one input size: its '
                          'anchors and query selection are fixed in the '
                          'graph. Export without dynamic_hw.')
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
