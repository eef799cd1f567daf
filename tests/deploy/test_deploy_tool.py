"""tools/deploy.py: config + checkpoint -> ONNX, parity report, repositories."""
import glob
import json
import os.path as osp
import sys

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from dinov3_mm.deploy import ExportError
from dinov3_mm.deploy.deployment import deploy

pytestmark = pytest.mark.filterwarnings('ignore')


def _model_config(path):
    return text_format.Parse(open(path).read(), model_config_pb2.ModelConfig())


def test_cli_writes_verified_model_and_both_repositories(
        cls_checkpoint, tmp_path, run_python, repo_root):
    out = tmp_path / 'deploy'
    proc = run_python(args=[
        repo_root / 'tools/deploy.py', cls_checkpoint['config'],
        cls_checkpoint['checkpoint'], '--work-dir', out, '--max-batch-size',
        '4', '--instance-kind', 'gpu', '--topk', '2', '--max-image-pixels',
        '4e6', '--max-image-bytes', '1048576'
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'parity passed' in proc.stdout
    report = json.load(open(out / 'parity_report.json'))
    assert report['passed'] and report['task'] == 'classification'
    assert report['preprocessing_max_abs_diff'] == 0.0
    # every exported resolution x batch size (1 and the 6 test images)
    assert [c['input_shape'] for c in report['checks']] == [
        [1, 3, 32, 32], [6, 3, 32, 32]]
    for check in report['checks']:
        assert check['outputs']['probs']['max_abs_diff'] <= 1e-4
        assert check['outputs']['probs']['top1_agreement'] == 1.0
    assert '| probs |' in open(out / 'parity_report.md').read()

    # the onnxruntime_onnx repository, parsed as Triton's protobuf
    model = _model_config(out / 'triton/dinov3_model/config.pbtxt')
    assert model.platform == 'onnxruntime_onnx'
    assert model.max_batch_size == 4
    assert list(model.dynamic_batching.preferred_batch_size) == [1, 2, 4]
    assert model.dynamic_batching.max_queue_delay_microseconds > 0
    assert model.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert [(i.name, list(i.dims)) for i in model.input] == [
        ('input', [3, 32, 32])]
    assert [(o.name, list(o.dims)) for o in model.output] == [('probs', [3])]
    onnx_file = out / 'triton/dinov3_model/1/model.onnx'
    assert onnx.load(str(onnx_file)).graph.input[0].name == 'input'
    ensemble = _model_config(out / 'triton/dinov3/config.pbtxt')
    assert ensemble.platform == 'ensemble'
    steps = [s.model_name for s in ensemble.ensemble_scheduling.step]
    assert steps == ['dinov3_preprocess', 'dinov3_model',
                     'dinov3_postprocess']
    assert [o.name for o in ensemble.output] == ['LABELS', 'SCORES',
                                                 'CLASS_IDS']
    assert list(ensemble.output[0].dims) == [2]
    pre = _model_config(out / 'triton/dinov3_preprocess/config.pbtxt')
    assert pre.backend == 'python' and pre.input[0].data_type == \
        model_config_pb2.TYPE_STRING
    spec = json.load(open(out / 'triton/dinov3_preprocess/1/'
                          'preprocess.json'))
    assert spec['resize']['size'] == [32, 32]
    assert spec['normalize']['mean'] == pytest.approx(
        [123.675, 116.28, 103.53])
    limits = dict(max_image_pixels=4_000_000, max_image_bytes=1 << 20)
    assert spec['limits'] == limits
    post = json.load(open(out / 'triton/dinov3_postprocess/1/'
                          'postprocess.json'))
    assert post['classes'] == ['circle', 'square', 'triangle']
    assert post['max_image_pixels'] == 4_000_000
    # the Python-backend variant runs the same ONNX file
    variant = _model_config(out / 'triton_python/dinov3_model/config.pbtxt')
    assert variant.backend == 'python' and not variant.platform
    assert osp.isfile(out / 'triton_python/dinov3_model/1/model.py')
    assert (open(out / 'triton_python/dinov3_model/1/model.onnx', 'rb').read()
            == open(onnx_file, 'rb').read())
    summary = json.load(open(out / 'deploy.json'))
    assert summary['ensemble'] == 'dinov3'
    assert summary['limits'] == summary['spec']['limits'] == limits
    # a Triton that caps HTTP bodies must let 4 images of 1 MiB through
    assert summary['server_args'] == [
        f'--http-max-input-size={4 * ((1 << 20) + 4) + (1 << 20)}']


def test_int8_reports_accuracy_drop(cls_checkpoint, tmp_path):
    summary = deploy(cls_checkpoint['config'], cls_checkpoint['checkpoint'],
                     str(tmp_path), precision='int8')
    q = summary['int8']
    assert q['images'] == 6
    assert q['accuracy_drop'] == pytest.approx(
        q['accuracy_pytorch_fp32'] - q['accuracy_onnx'])
    assert 'int8 on 6 labelled images' in open(
        tmp_path / 'parity_report.md').read()
    ops = {n.op_type for n in onnx.load(str(tmp_path / 'model.onnx')).graph.node}
    assert 'MatMulInteger' in ops or 'DynamicQuantizeLinear' in ops


def test_fp16_and_dynamic_hw(cls_checkpoint, tmp_path):
    summary = deploy(cls_checkpoint['config'], cls_checkpoint['checkpoint'],
                     str(tmp_path), precision='fp16', dynamic=('batch', 'hw'),
                     parity_images=[cls_checkpoint['data']],
                     num_parity_images=3)
    assert summary['passed'] and summary['fp32_nodes'] == []
    shapes = [c['input_shape'] for c in summary['checks']]
    assert shapes == [[1, 3, 32, 32], [3, 3, 32, 32], [1, 3, 48, 48],
                      [3, 3, 48, 48]]


def test_segmentation_deploy(seg_checkpoint, tmp_path):
    summary = deploy(seg_checkpoint['config'], seg_checkpoint['checkpoint'],
                     str(tmp_path), task='auto')
    assert summary['task'] == 'segmentation'
    for check in summary['checks']:
        assert check['outputs']['class_map']['mask_agreement'] == 1.0
    repo = tmp_path / 'triton_python'
    ensemble = _model_config(repo / 'dinov3/config.pbtxt')
    assert [o.name for o in ensemble.output] == ['MASK']
    assert list(ensemble.output[0].dims) == [-1, -1]
    post = ensemble.ensemble_scheduling.step[2]
    assert dict(post.input_map) == {'LOGITS': 'logits', 'META': 'meta'}


def test_errors_name_the_problem(cls_checkpoint, tmp_path, run_python,
                                 repo_root):
    with pytest.raises(ExportError, match='bf16'):
        deploy(cls_checkpoint['config'], cls_checkpoint['checkpoint'],
               str(tmp_path / 'a'), precision='bf16')
    # a test transform the server cannot reproduce
    with pytest.raises(ExportError, match='CenterCrop'):
        deploy(cls_checkpoint['config'], cls_checkpoint['checkpoint'],
               str(tmp_path / 'b'), cfg_options={
                   'test_dataloader.dataset.pipeline': [
                       dict(type='LoadImage'),
                       dict(type='mmcv.CenterCrop', crop_size=32),
                       dict(type='PackClsInputs')]})
    with pytest.raises(FileNotFoundError, match='--parity-images'):
        deploy(cls_checkpoint['config'], cls_checkpoint['checkpoint'],
               str(tmp_path / 'c'), cfg_options={
                   'test_dataloader.dataset.data_root': str(tmp_path / 'no')})


UNSUPPORTED = '''
import torch
from torch import nn
from dinov3_mm.registry import MODELS
from dinov3_mm.models.heads.cls_heads import LinearClsHead


@MODELS.register_module()
class EighClsHead(LinearClsHead):
    def forward(self, feats):
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        gram = x[:, :4, None] * x[:, None, :4]
        return super().forward(feats) + torch.linalg.eigh(gram)[0][:, :1]
'''


def test_unsupported_op_named_by_the_tool(cls_checkpoint, tmp_path,
                                          run_python, repo_root):
    (tmp_path / 'eigh_head.py').write_text(UNSUPPORTED)
    cfg_text = open(cls_checkpoint['config']).read()
    cfg = tmp_path / 'eigh.py'
    cfg.write_text(cfg_text + "\ncustom_imports = dict(imports=['eigh_head'])"
                   "\nmodel['head']['type'] = 'EighClsHead'\n")
    proc = run_python(args=[
        repo_root / 'tools/deploy.py', cfg, cls_checkpoint['checkpoint'],
        '--work-dir', tmp_path / 'out'
    ], extra_paths=[tmp_path])
    assert proc.returncode == 1
    assert 'linalg_eigh' in proc.stderr and 'head' in proc.stderr
