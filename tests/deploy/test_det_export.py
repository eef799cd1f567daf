"""ONNX export of DINOv3DETR: top-k outputs, no control flow, parity with
PyTorch, and the served postprocessing (det_ops) against ``predict``."""
import json
import os.path as osp
import sys

import numpy as np
import onnx
import pytest
import torch

from dinov3_mm.apis import init_model
from dinov3_mm.apis.det_inference import inference_detector
from dinov3_mm.deploy import (DeployWrapper, ExportError, check_parity,
                              control_flow_nodes, detect_task, export_onnx,
                              preprocess_images, run_onnx,
                              write_parity_report)
from dinov3_mm.deploy.det_parity import detection_parity
from dinov3_mm.deploy.serving_spec import serving_spec
from dinov3_mm.utils.det_ops import (boxes_to_original, mask_to_rle,
                                     masks_to_original)
from dinov3_mm.utils.image_ops import preprocess_encoded

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from det_helpers import make_det_checkpoint  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore')


@pytest.fixture(scope='module', params=[False, True], ids=['boxes', 'masks'])
def exported(request, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('det'))
    ckpt = make_det_checkpoint(folder, with_mask=request.param)
    model = init_model(ckpt['config'], ckpt['checkpoint'])
    path = osp.join(folder, 'model.onnx')
    export_onnx(model, None, path, input_size=(64, 64))
    return dict(ckpt, model=model, onnx=path, with_mask=request.param)


def test_graph_has_fixed_topk_outputs_and_no_control_flow(exported):
    model = exported['model']
    assert detect_task(model) == 'detection'
    graph = onnx.load(exported['onnx']).graph
    names = [o.name for o in graph.output]
    assert names == (['boxes', 'scores', 'labels', 'masks']
                     if exported['with_mask'] else
                     ['boxes', 'scores', 'labels'])
    assert control_flow_nodes(exported['onnx']) == []
    assert not any(n.op_type in ('If', 'Loop') for n in graph.node)
    out = run_onnx(exported['onnx'], torch.randn(3, 3, 64, 64))
    k = 32  # min(num_select=100, 8 queries x 4 classes)
    assert out['boxes'].shape == (3, k, 4)
    assert out['scores'].shape == (3, k) and out['labels'].dtype == np.int64
    assert (np.diff(out['scores'], axis=1) <= 0).all()
    if exported['with_mask']:
        assert out['masks'].shape == (3, k, 16, 16)  # stride 4 of 64 px


def test_onnxruntime_matches_eager_on_real_images(exported, tmp_path):
    model = exported['model']
    inputs = preprocess_images(model, exported['images'])
    with torch.no_grad():
        ref = DeployWrapper(model)(inputs)
    got = run_onnx(exported['onnx'], inputs)
    for name, value in zip(DeployWrapper(model).output_names, ref):
        np.testing.assert_allclose(got[name], value.numpy(), atol=1e-4,
                                   rtol=1e-4)
    report = check_parity(model, exported['onnx'], inputs)
    assert report['passed'] and report['task'] == 'detection'
    outputs = report['outputs']
    assert outputs['labels']['agreement'] == 1.0
    assert outputs['scores']['max_abs_diff'] < 1e-4
    assert outputs['boxes']['mean_iou'] > 0.999
    assert outputs['boxes']['max_abs_diff'] < 1e-2  # pixels
    if exported['with_mask']:
        assert outputs['masks']['mean_iou'] > 0.99
    assert report['speed']['eager_s'] > 0 and \
        report['speed']['onnxruntime_s'] > 0
    json_path, md_path = write_parity_report(report,
                                             str(tmp_path / 'parity.json'))
    assert json.load(open(json_path))['outputs']['labels']['agreement'] == 1
    assert '| boxes |' in open(md_path).read()


def test_served_postprocessing_matches_predict(exported):
    """Served preprocessing -> ONNX -> det_ops == model.predict."""
    model = exported['model']
    spec = serving_spec(model, 'detection')
    assert spec['resize'] == dict(size=[64, 64], pad_val=114,
                                  interpolation='bilinear', center=True)
    assert spec['detection']['num_detections'] == 32
    refs = inference_detector(model, exported['images'])
    for path, ref in zip(exported['images'], refs):
        x, meta = preprocess_encoded(open(path, 'rb').read(), spec)
        out = run_onnx(exported['onnx'], x[None])
        boxes = boxes_to_original(out['boxes'][0], meta, (64, 64))
        np.testing.assert_allclose(out['scores'][0], ref['scores'],
                                   atol=1e-5)
        np.testing.assert_array_equal(out['labels'][0], ref['labels'])
        np.testing.assert_allclose(boxes, ref['bboxes'], atol=1e-3)
        if exported['with_mask']:
            masks = masks_to_original(out['masks'][0], meta, (64, 64))
            assert masks.shape == ref['masks'].shape == \
                (len(boxes), ) + tuple(ref['ori_shape'])
            assert (masks.astype(bool) == ref['masks']).mean() > 0.999


def test_dynamic_hw_is_refused(exported, tmp_path):
    with pytest.raises(ExportError, match='one input size'):
        export_onnx(exported['model'], None, str(tmp_path / 'x.onnx'),
                    input_size=(64, 64), dynamic_hw=True)


def test_parity_pairs_detections_whose_ranks_swapped():
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 30, (1, 4, 2))
    ref = dict(boxes=np.concatenate([boxes, boxes + 20], -1),
               scores=np.array([[0.9, 0.5, 0.50000001, 0.1]], np.float32),
               labels=np.array([[0, 1, 2, 1]]))
    swap = [0, 2, 1, 3]
    got = {k: v[:, swap] for k, v in ref.items()}
    outputs, failures = detection_parity(ref, got, atol=1e-4)
    assert failures == [] and outputs['labels']['agreement'] == 1.0
    assert outputs['boxes']['mean_iou'] == 1.0
    got['labels'] = np.array([[0, 2, 1, 0]])
    outputs, failures = detection_parity(ref, got, atol=1e-4)
    assert outputs['labels']['agreement'] == 0.75
    assert failures and 'partner' in failures[0]


def test_uncompressed_rle_reads_back_with_pycocotools():
    from pycocotools import mask as mask_utils
    mask = np.zeros((5, 7), np.uint8)
    mask[0, 0] = mask[1:4, 2:6] = 1
    rle = mask_to_rle(mask)
    back = mask_utils.decode(mask_utils.frPyObjects(rle, 5, 7))
    np.testing.assert_array_equal(back, mask)


def test_deploy_cli_on_a_detection_config(exported, tmp_path, run_python,
                                          repo_root):
    """tools/deploy.py as for the other tasks: parity on the config's test
    set, both Triton repositories."""
    out = tmp_path / 'deploy'
    proc = run_python(args=[
        repo_root / 'tools/deploy.py', exported['config'],
        exported['checkpoint'], '--work-dir', out, '--score-thr', '0.01'
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith('detection model exported')
    report = json.load(open(out / 'parity_report.json'))
    assert report['passed'] and report['preprocessing_max_abs_diff'] == 0
    assert [c['input_shape'] for c in report['checks']] == [
        [1, 3, 64, 64], [3, 3, 64, 64]]
    post = json.load(open(out / 'triton_python' / 'dinov3_postprocess' /
                          '1' / 'postprocess.json'))
    assert post['score_threshold'] == 0.01 and post['input_size'] == [64, 64]
    assert post['with_mask'] == exported['with_mask']
    assert post['classes'] == exported['classes']
    assert osp.isfile(out / 'triton' / 'dinov3_postprocess' / '1' /
                      'det_ops.py')
    proc = run_python(args=[
        repo_root / 'tools/deploy.py', exported['config'],
        exported['checkpoint'], '--work-dir', tmp_path / 'hw', '--dynamic',
        'batch,hw'
    ])
    assert proc.returncode == 1 and 'one input size' in proc.stderr
