"""Parity of exported models with PyTorch (dinov3_mm.deploy.parity)."""
import json

import numpy as np
import onnx
import pytest
import torch

from dinov3_mm.deploy import (ParityError, check_parity, control_flow_nodes,
                              detect_task, export_onnx, preprocess_images,
                              run_onnx, write_parity_report)

pytestmark = pytest.mark.filterwarnings('ignore')


def test_classifier_parity_dynamic_batch_and_report(tmp_path, shape_images,
                                                    tiny_classifier,
                                                    shrunk_test_config,
                                                    onnx_batch_dim):
    model = tiny_classifier()
    assert detect_task(model) == 'classification'
    cfg = shrunk_test_config(
               'configs/classification/vits16_linear_probe_shapes.py', 32)
    inputs = preprocess_images(model, shape_images, cfg)
    assert inputs.shape == (3, 3, 32, 32)
    path = export_onnx(model, 'classification', str(tmp_path / 'cls.onnx'),
                       input_size=(32, 32))['path']
    assert control_flow_nodes(path) == []
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ['input']
    assert [o.name for o in graph.output] == ['probs']
    assert onnx_batch_dim(path).dim_param == 'batch'
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


def test_segmentor_parity(tmp_path, shape_images, shrunk_test_config,
                          tiny_segmentor):
    model = tiny_segmentor()
    assert detect_task(model) == 'segmentation'
    cfg = shrunk_test_config( 'configs/segmentation/vit_unet_seg_shapes.py', 64)
    inputs = preprocess_images(model, shape_images, cfg)
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


def test_int8_accuracy_and_parity_error(tmp_path, tiny_classifier):
    model = tiny_classifier()
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
