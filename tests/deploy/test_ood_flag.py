"""The OOD flag of a served classifier, without a server: what the
repository declares, which thresholds deploy accepts, what the client
shows. tests/deploy/test_triton.py checks the flag a real server returns."""
import json
import re

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from dinov3_mm.deploy.client import describe, image_result
from dinov3_mm.deploy.deployment import check_ood_threshold, deploy
from dinov3_mm.deploy.triton_repo import write_triton_repository

SPEC = dict(task='classification', input_size=[32, 32], threshold=0.5,
            classes=['circle', 'square', 'triangle'],
            limits=dict(max_image_pixels=None, max_image_bytes=None))


def _config(path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.mark.parametrize('ood', [None, dict(score='msp', threshold=0.7)])
def test_repository_declares_the_flag_only_with_a_threshold(ood, tmp_path):
    onnx = tmp_path / 'model.onnx'
    onnx.write_bytes(b'not read by the writer')
    repo = tmp_path / 'repo'
    write_triton_repository(str(repo), str(onnx), SPEC, 3, backend='python',
                            topk=2, ood=ood)
    post = json.loads((repo / 'dinov3_postprocess/1/postprocess.json')
                      .read_text())
    ensemble = _config(repo / 'dinov3/config.pbtxt')
    outputs = [(o.name, o.data_type, list(o.dims)) for o in ensemble.output]
    step = ensemble.ensemble_scheduling.step[-1]
    assert step.model_name == 'dinov3_postprocess'
    base = [('LABELS', model_config_pb2.TYPE_STRING, [2]),
            ('SCORES', model_config_pb2.TYPE_FP32, [2]),
            ('CLASS_IDS', model_config_pb2.TYPE_INT32, [2])]
    if ood is None:
        assert 'ood' not in post and outputs == base
        assert 'OOD' not in step.output_map
    else:
        assert post['ood'] == ood
        assert outputs == base + [('OOD', model_config_pb2.TYPE_BOOL, [1])]
        assert step.output_map['OOD'] == 'OOD'
        postprocess = _config(repo / 'dinov3_postprocess/config.pbtxt')
        assert [o.name for o in postprocess.output][-1] == 'OOD'


@pytest.mark.parametrize('entry, problem', [
    (dict(score='knn', threshold=-0.1), 'knn'),
    (dict(score='msp', threshold=float('nan')), 'nan'),
    (dict(score='msp', threshold=True), 'True'),
    (dict(score='msp'), "{'score': 'msp'}"),
])
def test_only_a_finite_msp_threshold_is_deployable(entry, problem):
    with pytest.raises(ValueError, match=re.escape(problem) + ".*'msp'"):
        check_ood_threshold(entry)


def test_segmentor_with_a_threshold_is_refused(seg_checkpoint, tmp_path):
    with pytest.raises(ValueError, match='classifiers; this model serves '
                       'segmentation'):
        deploy(seg_checkpoint['config'], seg_checkpoint['checkpoint'],
               str(tmp_path), ood_threshold=dict(score='msp', threshold=0.5))
    assert not (tmp_path / 'model.onnx').exists()


def test_client_shows_the_flag():
    outputs = dict(LABELS=np.array([[b'circle'], [b'square']], object),
                   SCORES=np.array([[0.9], [0.4]], np.float32),
                   OOD=np.array([[False], [True]]))
    assert image_result(outputs, 0)['ood'] is False
    assert image_result(outputs, 1) == dict(
        labels=[dict(label='square', score=pytest.approx(0.4))], ood=True)
    assert describe(outputs, 1) == 'square:0.4000 OOD'
    assert describe(outputs, 0) == 'circle:0.9000'
