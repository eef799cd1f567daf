"""ONNX export of tiny random dinov3_mm models: graph checks and parity."""
import glob
import json
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from dinov3_mm.deploy import (DeployWrapper, ExportError, ParityError,
                              check_graph, check_parity, control_flow_nodes,
                              detect_task, export_onnx, preprocess_images,
                              run_onnx, write_parity_report)
from dinov3_mm.registry import MODELS

pytestmark = pytest.mark.filterwarnings('ignore')
VIT = dict(type='DINOv3ViT',
           arch=dict(embed_dims=48, num_layers=2, num_heads=3))


def _classifier(**kwargs):
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    backbone = dict(VIT, out_type='cls_patch_avg', **kwargs.pop('vit', {}))
    return MODELS.build(dict(
        type='DINOv3Classifier', backbone=backbone,
        head=dict(type='LinearClsHead', num_classes=3, in_channels=96),
        **kwargs)).eval()


def _segmentor():
    init_default_scope('dinov3_mm')
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='DINOv3Segmentor',
        data_preprocessor=dict(normalization='lvd1689m'),
        backbone=dict(VIT, out_type='featmap', out_indices=(-1, )),
        neck=dict(type='SimpleFPN', in_channels=48, out_channels=16,
                  scales=(4, 2, 1, 0.5)),
        decode_head=dict(type='UNetHead', in_channels=[16] * 4,
                         channels=(16, 16, 8), num_classes=4,
                         dropout_ratio=0.0))).eval()


def _cfg(repo_root, rel, size):
    cfg = Config.fromfile(str(repo_root / rel))
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeKeepRatioPad':
            step['size'] = size
    return cfg


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    from dinov3_mm.datasets.synthetic import write_shape_dataset
    root = str(tmp_path_factory.mktemp('shapes'))
    write_shape_dataset(root, num_per_class=1, size=48, splits=('test', ))
    paths = sorted(glob.glob(osp.join(root, 'test', '*', '*.png')))
    assert len(paths) == 3
    return paths


def _batch_dim(path):
    return onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0]


def test_classifier_parity_dynamic_batch_and_report(tmp_path, images,
                                                    repo_root):
    model = _classifier()
    assert detect_task(model) == 'classification'
    cfg = _cfg(repo_root,
               'configs/classification/vits16_linear_probe_shapes.py', 32)
    inputs = preprocess_images(model, images, cfg)
    assert inputs.shape == (3, 3, 32, 32)
    path = export_onnx(model, 'classification', str(tmp_path / 'cls.onnx'),
                       input_size=(32, 32))['path']
    assert control_flow_nodes(path) == []
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ['input']
    assert [o.name for o in graph.output] == ['probs']
    assert _batch_dim(path).dim_param == 'batch'
    assert not any('mkldnn' in n.op_type.lower() or n.domain not in
                   ('', 'ai.onnx') for n in graph.node)
    for batch in (inputs[:1], inputs):  # batch 1 and 3 on one file
        report = check_parity(model, path, batch, atol=1e-4)
        assert report['passed'] and report['batch'] == len(batch)
        probs = report['outputs']['probs']
        assert probs['max_abs_diff'] <= 1e-4 and probs['cosine'] > 0.9999
        assert probs['top1_agreement'] == 1.0
    out = run_onnx(path, inputs)['probs']
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
    json_path, md_path = write_parity_report(report,
                                             str(tmp_path / 'parity.json'))
    saved = json.load(open(json_path))
    assert saved['passed'] is True and saved['task'] == 'classification'
    assert saved['outputs']['probs']['top1_agreement'] == 1.0
    assert saved['input_shape'] == [3, 3, 32, 32]
    md = open(md_path).read()
    assert '| probs |' in md and 'PASS' in md and 'max_abs_diff' in md


def test_static_batch_export(tmp_path):
    model = _classifier()
    path = export_onnx(model, None, str(tmp_path / 'static.onnx'),
                       input_size=(32, 32), batch_size=2,
                       dynamic_batch=False)['path']
    assert _batch_dim(path).dim_value == 2
    check_parity(model, path, torch.randn(2, 3, 32, 32))


def test_segmentor_parity(tmp_path, images, repo_root):
    model = _segmentor()
    assert detect_task(model) == 'segmentation'
    cfg = _cfg(repo_root, 'configs/segmentation/vit_unet_seg_shapes.py', 64)
    inputs = preprocess_images(model, images, cfg)
    assert inputs.shape == (3, 3, 64, 64)
    path = export_onnx(model, 'segmentation', str(tmp_path / 'seg.onnx'),
                       input_size=(64, 64))['path']
    assert control_flow_nodes(path) == []
    for batch in (inputs[:1], inputs):
        report = check_parity(model, path, batch, atol=1e-4,
                              min_agreement=1.0)
        assert report['outputs']['class_map']['mask_agreement'] == 1.0
        assert report['outputs']['logits']['max_abs_diff'] <= 1e-4
    outs = run_onnx(path, inputs)
    assert outs['class_map'].dtype == np.int64
    assert outs['class_map'].shape == (3, 64, 64)
    assert outs['logits'].shape == (3, 4, 64, 64)


def test_lora_merged_before_export(tmp_path, images, repo_root):
    from dinov3_mm.models.lora import has_lora
    model = _classifier(lora=dict(r=4, alpha=8))
    with torch.no_grad():  # non-zero adapters, so the merge matters
        for name, p in model.named_parameters():
            if 'lora_B' in name:
                p.normal_(std=0.05)
    cfg = _cfg(repo_root,
               'configs/classification/vits16_linear_probe_shapes.py', 32)
    inputs = preprocess_images(model, images, cfg)
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


def test_features_of_frozen_backbone(tmp_path):
    # frozen weights + no_grad is exactly when the oneDNN linear kicks in
    model = _classifier(vit=dict(frozen_stages=2))
    path = export_onnx(model, 'features', str(tmp_path / 'feat.onnx'),
                       input_size=(32, 32))['path']
    graph = onnx.load(path).graph
    assert [o.name for o in graph.output] == ['embeddings']
    x = torch.randn(3, 3, 32, 32)
    report = check_parity(model, path, x, task='features')
    assert report['outputs']['embeddings']['shape'] == [3, 48]


def test_int8_accuracy_and_parity_error(tmp_path):
    model = _classifier()
    x = torch.randn(3, 3, 32, 32)
    path = export_onnx(model, 'classification', str(tmp_path / 'q.onnx'),
                       input_size=(32, 32), precision='int8')['path']
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert ops & {'MatMulInteger', 'DynamicQuantizeLinear', 'ConvInteger'}
    report = check_parity(model, path, x, atol=0.05, min_cosine=0.99)
    assert 0.0 <= report['outputs']['probs']['top1_agreement'] <= 1.0
    with pytest.raises(ParityError, match='max abs diff') as info:
        check_parity(model, path, x, atol=0.0)
    assert info.value.report['passed'] is False
    assert info.value.report['failures']


def test_fp16(tmp_path):
    model = _classifier()
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


def test_dynamic_hw_vit_runs_at_other_sizes(tmp_path):
    model = _classifier()
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
