"""A real tritonserver (the nvidia-pytriton build) serving deployed models.

Each module-scoped server runs the ``triton_python`` repository that
``tools/deploy.py`` wrote (that build has no onnxruntime backend), on
127.0.0.1 with free ports. Clients talk HTTP and gRPC through tritonclient;
answers are compared with PyTorch on the same image files.
"""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from dinov3_mm.apis import init_model
from dinov3_mm.apis.seg_inference import inference_segmentor
from dinov3_mm.deploy import DeployWrapper, preprocess_images
from dinov3_mm.deploy.client import (ImageClient, latency_summary,
                                     read_files, run_requests)
from dinov3_mm.deploy.deployment import deploy
from dinov3_mm.deploy.server import TritonServer, TritonServerError

pytestmark = pytest.mark.filterwarnings('ignore')


def _serve(checkpoint, folder, **options):
    deploy(checkpoint['config'], checkpoint['checkpoint'], folder,
           max_batch_size=8, topk=3, **options)
    return TritonServer(osp.join(folder, 'triton_python'),
                        startup_timeout=120)


def _ood_threshold(checkpoint):
    """The median top probability of the test images: half are OOD."""
    top = _torch_probs(checkpoint, _cls_images(checkpoint)).max(1)
    return float(np.median(top))


@pytest.fixture(scope='module')
def cls_server(cls_checkpoint, tmp_path_factory):
    ood = dict(score='msp', threshold=_ood_threshold(cls_checkpoint))
    with _serve(cls_checkpoint, str(tmp_path_factory.mktemp('d')),
                ood_threshold=ood) as server:
        server.ood_threshold = ood['threshold']
        yield server


@pytest.fixture(scope='module')
def seg_server(seg_checkpoint, tmp_path_factory):
    with _serve(seg_checkpoint, str(tmp_path_factory.mktemp('d'))) as server:
        yield server


def _cls_images(checkpoint):
    files = sorted(glob.glob(osp.join(checkpoint['data'], 'test', '*',
                                      '*.png')))
    return files + checkpoint['odd_images']


def _torch_probs(checkpoint, files):
    model = init_model(checkpoint['config'], checkpoint['checkpoint'])
    with torch.no_grad():
        return DeployWrapper(model, 'classification')(
            preprocess_images(model, files)).numpy()


@pytest.mark.parametrize('protocol', ['http', 'grpc'])
def test_classification_matches_pytorch(cls_server, cls_checkpoint,
                                        protocol):
    files = _cls_images(cls_checkpoint)
    ref = _torch_probs(cls_checkpoint, files)
    url = cls_server.http_url if protocol == 'http' else cls_server.grpc_url
    client = ImageClient(url, protocol)
    out = client.infer(read_files(files))  # one request, batch of 8
    client.close()
    assert out['SCORES'].shape == (len(files), 3)
    order = np.argsort(-ref, axis=1, kind='stable')
    np.testing.assert_array_equal(out['CLASS_IDS'], order)
    np.testing.assert_allclose(out['SCORES'],
                               np.take_along_axis(ref, order, 1), atol=1e-5)
    names = np.array(cls_checkpoint['classes'])[order]
    assert [[lb.decode() for lb in row] for row in out['LABELS']] == \
        names.tolist()
    # tools/test_ood.py --write-threshold msp, served: top prob below it
    flags = ref.max(1) < cls_server.ood_threshold
    assert out['OOD'].shape == (len(files), 1) and 0 < flags.sum() < len(
        files)
    np.testing.assert_array_equal(out['OOD'][:, 0], flags)


@pytest.mark.parametrize('protocol', ['http', 'grpc'])
def test_segmentation_mask_matches_pytorch(seg_server, seg_checkpoint,
                                           protocol):
    files = sorted(glob.glob(osp.join(seg_checkpoint['data'], 'img_dir',
                                      'val', '*.png')))
    files += seg_checkpoint['odd_images']
    model = init_model(seg_checkpoint['config'], seg_checkpoint['checkpoint'])
    refs = inference_segmentor(model, files)
    url = seg_server.http_url if protocol == 'http' else seg_server.grpc_url
    client = ImageClient(url, protocol)
    for path, ref in zip(files, refs):  # images of different sizes
        mask = client.infer(read_files([path]))['MASK'][0]
        assert mask.shape == ref['mask'].shape == tuple(ref['ori_shape'][:2])
        assert (mask == ref['mask']).mean() > 0.99, path
    client.close()


def test_segmentation_request_of_mixed_sizes_is_400(seg_server,
                                                   seg_checkpoint):
    wide, tall = read_files(seg_checkpoint['odd_images'])  # 70x40, 36x60
    client = ImageClient(seg_server.grpc_url, 'grpc')
    with pytest.raises(InferenceServerException) as info:
        client.infer([wide, tall])
    assert info.value.status() == 'StatusCode.INVALID_ARGUMENT'
    assert info.value.message().endswith(
        'preprocess: image 1 of the request is 36x60 but image 0 is 70x40: '
        'one request returns one mask array, so send images of different '
        'sizes in separate requests')
    assert client.infer([wide, wide])['MASK'].shape == (2, 40, 70)
    client.close()
    # straight to the postprocessing: a META it cannot apply is refused
    num_classes = len(seg_checkpoint['classes'])
    http = httpclient.InferenceServerClient(seg_server.http_url)
    for meta, message in (([40, 70, 20, 20, 0, 0], 'does not fit 32x32'),
                          ([10**5, 10**5, 0, 0, 0, 0],
                           r'image is 100000x100000 = 10000\.0 MP, above the '
                           r'40\.0 MP limit \(--max-image-pixels\)')):
        logits = httpclient.InferInput('LOGITS', [1, num_classes, 32, 32],
                                       'FP32')
        logits.set_data_from_numpy(
            np.zeros((1, num_classes, 32, 32), np.float32))
        meta_in = httpclient.InferInput('META', [1, 6], 'INT32')
        meta_in.set_data_from_numpy(np.array([meta], np.int32))
        with pytest.raises(InferenceServerException, match=message) as info:
            http.infer('dinov3_postprocess', [logits, meta_in])
        assert info.value.status() == '400'
    http.close()


def test_load_8_clients_50_requests_each(cls_server, cls_checkpoint):
    files = _cls_images(cls_checkpoint)
    data = read_files(files)
    ref_ids = _torch_probs(cls_checkpoint, files).argmax(1)
    batches = [[data[i % len(data)]] for i in range(400)]
    results = run_requests(cls_server.grpc_url, batches, 'grpc',
                           concurrency=8, timeout=60)
    errors = [r['error'] for r in results if r['error']]
    assert errors == []
    got = [r['outputs']['CLASS_IDS'][0, 0] for r in results]
    assert got == [ref_ids[i % len(data)] for i in range(400)]
    summary = latency_summary(results, 1.0, 1)
    assert summary['requests'] == 400 and summary['failed'] == 0
    assert 0 < summary['p50_ms'] <= summary['p95_ms'] <= summary['p99_ms']


def _good(server, data):
    client = ImageClient(server.http_url)
    try:
        return client.infer([data])['CLASS_IDS'].shape == (1, 3)
    finally:
        client.close()


def test_malformed_requests_fail_alone(cls_server, cls_checkpoint):
    image = read_files(_cls_images(cls_checkpoint)[:1])[0]
    http = httpclient.InferenceServerClient(cls_server.http_url)
    grpc = grpcclient.InferenceServerClient(cls_server.grpc_url)

    def send(module, client, name, shape, dtype, data):
        inp = module.InferInput(name, shape, dtype)
        inp.set_data_from_numpy(data)
        return client.infer('dinov3', [inp])

    bad = [
        # wrong dtype
        (httpclient, http, 'IMAGE', [1, 1], 'FP32',
         np.zeros((1, 1), np.float32), 'FP32'),
        # wrong shape
        (grpcclient, grpc, 'IMAGE', [1, 2], 'BYTES',
         np.array([[image, image]], dtype=object), 'shape'),
        # corrupt image bytes
        (httpclient, http, 'IMAGE', [1, 1], 'BYTES',
         np.array([[image[:40]]], dtype=object),
         r'image 0 of the request: Cannot read image \(40 encoded bytes\)'),
        (grpcclient, grpc, 'IMAGE', [2, 1], 'BYTES',
         np.array([[image], [b'not an image']], dtype=object),
         r'image 1 of the request: Cannot read image \(12 encoded bytes\): '
         r'not an image format Pillow can read$'),
        # empty bytes
        (httpclient, http, 'IMAGE', [1, 1], 'BYTES',
         np.array([[b'']], dtype=object), 'empty image data'),
    ]
    for module, client, name, shape, dtype, data, message in bad:
        with pytest.raises(InferenceServerException, match=message) as info:
            send(module, client, name, shape, dtype, data)
        # the client's fault: HTTP 400 / gRPC INVALID_ARGUMENT, not 500
        assert info.value.status() in ('400', 'StatusCode.INVALID_ARGUMENT')
        assert "b'" not in info.value.message()
        assert _good(cls_server, image)  # the server keeps serving
    # an empty HTTP body
    request = urllib.request.Request(
        f'http://{cls_server.http_url}/v2/models/dinov3/infer', data=b'',
        method='POST', headers={'Content-Type': 'application/json'})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 400
    assert b'"error"' in info.value.read()
    # a wrong shape straight to the ONNX model
    inp = httpclient.InferInput('input', [1, 3, 16, 16], 'FP32')
    inp.set_data_from_numpy(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(InferenceServerException, match='input') as info:
        http.infer('dinov3_model', [inp])
    assert info.value.status() == '400'
    assert _good(cls_server, image)
    assert cls_server.is_running()
    http.close()
    grpc.close()


def test_launcher_errors(tmp_path):
    with pytest.raises(TritonServerError, match='tools/deploy.py'):
        TritonServer(str(tmp_path / 'missing'))
    broken = tmp_path / 'repo' / 'broken'
    (broken / '1').mkdir(parents=True)
    (broken / 'config.pbtxt').write_text(
        'name: "broken"\nbackend: "python"\nmax_batch_size: 1\n')
    (broken / '1' / 'model.py').write_text('raise RuntimeError("boom")\n')
    server = TritonServer(str(tmp_path / 'repo'), startup_timeout=60)
    with pytest.raises(TritonServerError, match='broken'):
        server.start()
    assert not server.is_running()


def _load_yaml(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def test_kubernetes_probes_and_serving_image_match(cls_server, repo_root):
    """The manifests probe endpoints a real server answers, on the ports and
    repository path the serving image uses."""
    k8s = repo_root / 'docker' / 'k8s'
    deployment = _load_yaml(k8s / 'deployment.yaml')
    container = deployment['spec']['template']['spec']['containers'][0]
    ports = {p['name']: p['containerPort'] for p in container['ports']}
    assert ports == {'http': 8000, 'grpc': 8001, 'metrics': 8002}
    for probe in ('readinessProbe', 'livenessProbe'):
        get = container[probe]['httpGet']
        assert get['port'] == 'http'
        url = f'http://{cls_server.http_url}{get["path"]}'
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    dockerfile = (repo_root / 'docker' / 'Dockerfile.serve').read_text()
    assert 'COPY ${MODEL_REPOSITORY} /models' in dockerfile
    assert 'ARG MODEL_REPOSITORY=work_dirs/deploy/triton\n' in dockerfile
    assert '--model-repository=/models' in container['args']
    service = _load_yaml(k8s / 'service.yaml')
    assert {p['targetPort'] for p in service['spec']['ports']} == set(ports)
    assert service['spec']['selector'] == \
        deployment['spec']['selector']['matchLabels']
    hpa = _load_yaml(k8s / 'hpa.yaml')
    assert hpa['spec']['scaleTargetRef']['name'] == \
        deployment['metadata']['name']


def test_client_tool_prints_predictions_and_benchmarks(
        cls_server, cls_checkpoint, run_python, repo_root, tmp_path):
    files = _cls_images(cls_checkpoint)
    probs = _torch_probs(cls_checkpoint, files)
    ref = np.array(cls_checkpoint['classes'])[probs.argmax(1)]
    tool = repo_root / 'tools' / 'triton_client.py'
    proc = run_python(args=[tool, *files, '--url', cls_server.http_url,
                            '--batch-size', '3'])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert [line.split('\t')[0] for line in lines] == files
    assert [line.split('\t')[1].split(':')[0] for line in lines] == \
        ref.tolist()
    # the deployment's OOD flag ends the line of a flagged image
    assert [line.endswith(' OOD') for line in lines] == (
        probs.max(1) < cls_server.ood_threshold).tolist()
    out = tmp_path / 'bench.json'
    proc = run_python(args=[
        tool, cls_checkpoint['data'], '--url', cls_server.grpc_url,
        '--protocol', 'grpc', '--benchmark', '--concurrency', '4',
        '--requests', '20', '--warmup', '2', '--json', out
    ])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'grpc x4: 20 requests (0 failed)' in proc.stdout
    summary = json.loads(out.read_text())
    assert summary['requests'] == 20 and summary['failed'] == 0
    assert summary['p50_ms'] <= summary['p99_ms']


def _wait_ready(port, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            url = f'http://127.0.0.1:{port}/v2/health/ready'
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    return False


def test_serve_command_runs_until_interrupted(cls_server, cls_checkpoint,
                                              repo_root):
    from dinov3_mm.deploy.server import free_port
    http, grpc = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, '-m', 'dinov3_mm.deploy', 'serve',
         cls_server.model_repository, '--http-port', str(http),
         '--grpc-port', str(grpc)], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, cwd=str(repo_root),
        env=dict(os.environ, PYTHONPATH=str(repo_root)))
    try:
        assert _wait_ready(http, proc)
        line = proc.stdout.readline()
        assert f'HTTP 127.0.0.1:{http}, gRPC 127.0.0.1:{grpc}' in line
        client = ImageClient(f'127.0.0.1:{grpc}', 'grpc')
        out = client.infer(read_files(_cls_images(cls_checkpoint)[:2]))
        client.close()
        assert out['CLASS_IDS'].shape == (2, 3)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output = proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, output[-2000:]
