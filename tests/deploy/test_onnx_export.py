"""ONNX export of tiny random models (dinov3_mm.deploy.onnx_export)."""
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from dinov3_mm.deploy import (DeployWrapper, ExportError, check_graph,
                              check_parity, control_flow_nodes, export_onnx,
                              preprocess_images, run_onnx)

pytestmark = pytest.mark.filterwarnings('ignore')


def test_static_batch_export(tmp_path, tiny_classifier, onnx_batch_dim):
    model = tiny_classifier()
    path = export_onnx(model, None, str(tmp_path / 'static.onnx'),
                       input_size=(32, 32), batch_size=2,
                       dynamic_batch=False)['path']
    assert onnx_batch_dim(path).dim_value == 2
    check_parity(model, path, torch.randn(2, 3, 32, 32))


def test_lora_merged_before_export(tmp_path, shape_images, tiny_classifier,
                                   shrunk_test_config):
    from dinov3_mm.models.lora import has_lora
    model = tiny_classifier(lora=dict(r=4, alpha=8))
    with torch.no_grad():  # non-zero adapters, so the merge matters
        for name, p in model.named_parameters():
            if 'lora_B' in name:
                p.normal_(std=0.05)
    cfg = shrunk_test_config(
               'configs/classification/vits16_linear_probe_shapes.py', 32)
    inputs = preprocess_images(model, shape_images, cfg)
    with torch.no_grad():
        ref = DeployWrapper(model, 'classification')(inputs).numpy()
    path = export_onnx(model, 'classification', str(tmp_path / 'lora.onnx'),
                       input_size=(32, 32))['path']
    assert not has_lora(model)
    names = [i.name for i in onnx.load(path).graph.initializer]
    assert not any('lora' in n for n in names)
    np.testing.assert_allclose(run_onnx(path, inputs)['probs'], ref,
                               atol=1e-4)
    check_parity(model, path, inputs, atol=1e-4)


def test_fp16(tmp_path, tiny_classifier):
    model = tiny_classifier()
    path = export_onnx(model, 'classification', str(tmp_path / 'h.onnx'),
                       input_size=(32, 32), precision='fp16')['path']
    check_parity(model, path, torch.randn(2, 3, 32, 32), atol=1e-2,
                 min_cosine=0.999)


class _Eigh(nn.Module):

    def forward(self, x):
        return torch.linalg.eigh(x @ x.transpose(-1, -2))[0][..., 0, :]


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = _Eigh()

    def forward(self, x):
        return self.backbone(x)


def test_unsupported_op_is_named(tmp_path):
    with pytest.raises(ExportError, match='linalg_eigh') as info:
        export_onnx(_Model(), 'features', str(tmp_path / 'bad.onnx'),
                    input_size=(4, 4))
    assert info.value.op == 'aten::linalg_eigh'
    assert info.value.module == 'model.backbone'


def test_control_flow_is_refused(tmp_path):
    from onnx import TensorProto, helper
    branch = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y_b'])], 'b', [],
        [helper.make_tensor_value_info('y_b', TensorProto.FLOAT, [1])])
    graph = helper.make_graph(
        [helper.make_node('If', ['c'], ['y'], name='my_if',
                          then_branch=branch, else_branch=branch)], 'g',
        [helper.make_tensor_value_info('c', TensorProto.BOOL, []),
         helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    path = str(tmp_path / 'if.onnx')
    onnx.save(helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 17)]), path)
    with pytest.raises(ExportError, match='If:my_if'):
        check_graph(path)


def test_dynamic_hw_vit_runs_at_other_sizes(tmp_path, tiny_classifier):
    model = tiny_classifier()
    path = export_onnx(model, 'classification', str(tmp_path / 'hw.onnx'),
                       input_size=(32, 32), dynamic_hw=True)['path']
    assert control_flow_nodes(path) == []
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ['batch', '', 'height', 'width']
    for shape in ((2, 3, 32, 32), (1, 3, 48, 64), (3, 3, 80, 48)):
        report = check_parity(model, path, torch.randn(*shape), atol=1e-4)
        assert report['input_shape'] == list(shape)


class _Overflowing(nn.Module):
    """A classifier whose hidden activations exceed the fp16 range."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, stride=4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x, mode='tensor'):
        h = self.conv(x).abs() * 3e4 + 7e4  # > 65504 everywhere
        return self.fc(h.mean((2, 3)) / 1e5)


def test_fp16_keeps_overflowing_nodes_in_fp32(tmp_path):
    from dinov3_mm.deploy.onnx_export import fp16_overflow_nodes
    torch.manual_seed(0)
    model = _Overflowing().eval()
    x = torch.randn(2, 3, 16, 16)
    fp32 = export_onnx(model, 'classification', str(tmp_path / 'a.onnx'),
                       input_size=(16, 16))['path']
    nodes = fp16_overflow_nodes(fp32, x)
    ops = {n.name: n.op_type for n in onnx.load(fp32).graph.node}
    assert nodes and {ops[n] for n in nodes} >= {'Add'}
    result = export_onnx(model, 'classification', str(tmp_path / 'h.onnx'),
                         input_size=(16, 16), precision='fp16',
                         calibration=x)
    assert result['fp32_nodes'] == nodes
    check_parity(model, result['path'], x, 'classification', atol=1e-2,
                 min_cosine=0.999)
    # kept nodes compute in fp32, the rest (e.g. the conv) in fp16
    graph = onnx.shape_inference.infer_shapes(onnx.load(result['path'])).graph
    types = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}
    out_type = {n.name: types.get(n.output[0]) for n in graph.node}
    assert {out_type[n] for n in nodes} == {onnx.TensorProto.FLOAT}
    conv = [n.name for n in graph.node if n.op_type == 'Conv']
    assert out_type[conv[0]] == onnx.TensorProto.FLOAT16
