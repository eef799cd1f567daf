"""A real tritonserver (the nvidia-pytriton build) serving a detection +
mask ensemble written by ``deploy``; clients send PNG bytes and get boxes,
labels, scores and masks in original-image pixels, compared with
``model.predict`` on the same files."""
import os.path as osp
import sys

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from dinov3_mm.apis import init_model
from dinov3_mm.apis.det_inference import inference_detector
from dinov3_mm.deploy.client import (ImageClient, describe, detections,
                                     image_result, read_files)
from dinov3_mm.deploy.deployment import deploy
from dinov3_mm.deploy.server import TritonServer

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from det_helpers import make_det_checkpoint  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore')


def _reference(ckpt, score_thr=0.0):
    model = init_model(ckpt['config'], ckpt['checkpoint'])
    return inference_detector(model, ckpt['images'], score_thr=score_thr)


def _threshold(refs):
    """Random weights: a threshold keeping about the better half of every
    image's top-k, half-way between two scores (none lies near it)."""
    scores = np.unique(np.concatenate([r['scores'] for r in refs]))
    i = int(np.searchsorted(scores, min(np.median(r['scores'])
                                        for r in refs)))
    while i > 1 and scores[i] - scores[i - 1] < 1e-5:
        i -= 1
    return float((scores[i] + scores[i - 1]) / 2)


@pytest.fixture(scope='module')
def det_server(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('det'))
    ckpt = make_det_checkpoint(folder, with_mask=True)
    ckpt['score_thr'] = _threshold(_reference(ckpt))
    summary = deploy(ckpt['config'], ckpt['checkpoint'],
                     osp.join(folder, 'deploy'), max_batch_size=4,
                     parity_images=ckpt['images'],
                     score_threshold=ckpt['score_thr'])
    assert summary['task'] == 'detection' and summary['passed']
    with TritonServer(summary['repositories']['python'],
                      startup_timeout=120) as server:
        server.ckpt = ckpt
        yield server


def _assert_same(found, ref, classes):
    assert 0 < len(found['scores']) == len(ref['scores']) < 32
    np.testing.assert_allclose(found['scores'], ref['scores'], atol=1e-5)
    np.testing.assert_array_equal(found['class_ids'], ref['labels'])
    assert found['labels'] == [classes[i] for i in ref['labels']]
    np.testing.assert_allclose(found['boxes'], ref['bboxes'], atol=1e-3)
    assert found['masks'].shape == ref['masks'].shape
    assert (found['masks'].astype(bool) == ref['masks']).mean() > 0.999


@pytest.mark.parametrize('protocol', ['http', 'grpc'])
def test_detections_match_predict_in_original_pixels(det_server, protocol):
    ckpt = det_server.ckpt
    refs = _reference(ckpt, ckpt['score_thr'])
    url = det_server.http_url if protocol == 'http' else det_server.grpc_url
    client = ImageClient(url, protocol, timeout=60)
    try:
        for path, ref in zip(ckpt['images'], refs):  # 64x64, 90x50, 40x72
            out = client.infer(read_files([path]))
            found = detections(out, 0)
            _assert_same(found, ref, ckpt['classes'])
            assert found['masks'].shape[1:] == tuple(ref['ori_shape'])
        # a batch of same-size images: padded to the larger count
        paths = ckpt['images'][:2]
        out = client.infer(read_files(paths))
        assert out['NUM_DETECTIONS'].shape == (2, 1)
        for i in range(2):
            _assert_same(detections(out, i), refs[i], ckpt['classes'])
        result = image_result(out, 0)
        first = result['detections'][0]
        assert set(first) == {'label', 'class_id', 'score', 'box', 'mask'}
        assert first['mask']['size'] == [64, 64]
        assert describe(out, 0).startswith(
            f"{len(result['detections'])} detections")
    finally:
        client.close()


def test_mixed_sizes_in_one_mask_request_are_400(det_server):
    wide, tall = read_files(det_server.ckpt['images'][-2:])
    client = ImageClient(det_server.grpc_url, 'grpc', timeout=60)
    try:
        with pytest.raises(InferenceServerException) as info:
            client.infer([wide, tall])
        assert info.value.status() == 'StatusCode.INVALID_ARGUMENT'
        assert 'send images of different sizes in separate requests' in \
            info.value.message()
    finally:
        client.close()
