"""tools/triton_client.py: servers that are not there or speak the other
protocol, and segmentation results with class names, masks and JSON.

The fast cases use a plain TCP listener that answers garbage and a port
nobody listens on; the others a real tritonserver (nvidia-pytriton).
"""
import json
import os
import os.path as osp
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from dinov3_mm.deploy.client import ServerUnavailableError, check_server
from dinov3_mm.deploy.server import TritonServer, free_port

from tests.deploy.test_serve_cli import write_echo_repository


@pytest.fixture
def garbage_port():
    """A listener that accepts connections and sends bytes of no protocol."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    sock.listen(8)
    sock.settimeout(0.5)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.sendall(b'\x00\x00\x12\x04\x00garbage\r\n\r\n')
                    conn.recv(1024)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(5)
    sock.close()


def _client(run_python, repo_root, *args):
    return run_python(args=[repo_root / 'tools' / 'triton_client.py',
                            *map(str, args)])


def _image(tmp_path):
    path = tmp_path / 'img.png'
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return path


def _one_line_error(proc):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith('error: ')
    return proc.stderr


def test_nothing_listening(tmp_path, run_python, repo_root):
    url = f'127.0.0.1:{free_port()}'
    err = _one_line_error(_client(run_python, repo_root, _image(tmp_path),
                                  '--url', url))
    assert f'error: nothing answers at {url}' in err
    assert 'is the server running?' in err


@pytest.mark.parametrize('protocol, other', [('http', 'grpc'),
                                             ('grpc', 'http')])
def test_listener_of_another_protocol(protocol, other, garbage_port,
                                      tmp_path, run_python, repo_root):
    url = f'127.0.0.1:{garbage_port}'
    err = _one_line_error(_client(run_python, repo_root, _image(tmp_path),
                                  '--url', url, '--protocol', protocol))
    assert (f'nothing answers {protocol.upper()} at {url} (it accepts '
            'connections but replies in another protocol)') in err
    assert f'add --protocol {other}' in err


@pytest.fixture(scope='module')
def echo_server(tmp_path_factory):
    repo = write_echo_repository(tmp_path_factory.mktemp('echo') / 'repo')
    with TritonServer(str(repo), startup_timeout=120) as server:
        yield server


def test_real_server_wrong_port_and_model(echo_server, tmp_path, run_python,
                                          repo_root):
    image = _image(tmp_path)
    err = _one_line_error(_client(run_python, repo_root, image, '--url',
                                  echo_server.grpc_url))
    assert f'nothing answers HTTP at {echo_server.grpc_url}' in err
    assert 'add --protocol grpc' in err
    err = _one_line_error(_client(run_python, repo_root, image, '--url',
                                  echo_server.http_url, '--protocol', 'grpc'))
    assert 'add --protocol http' in err
    err = _one_line_error(_client(run_python, repo_root, image, '--url',
                                  echo_server.http_url))
    assert "has no ready model 'dinov3'" in err
    check_server(echo_server.http_url, 'http', 'echo')
    check_server(echo_server.grpc_url, 'grpc', 'echo')
    with pytest.raises(ServerUnavailableError, match='--protocol grpc'):
        check_server(echo_server.grpc_url, 'http', 'echo')


@pytest.fixture(scope='module')
def seg_deployment(seg_checkpoint, tmp_path_factory):
    from dinov3_mm.deploy.deployment import deploy
    folder = str(tmp_path_factory.mktemp('seg_deploy'))
    deploy(seg_checkpoint['config'], seg_checkpoint['checkpoint'], folder,
           max_batch_size=4)
    repo = osp.join(folder, 'triton_python')
    with TritonServer(repo, startup_timeout=120) as server:
        yield dict(server=server, repo=repo, folder=folder)


def test_segmentation_names_masks_and_json(seg_deployment, seg_checkpoint,
                                           tmp_path, run_python, repo_root):
    images = sorted(
        osp.join(seg_checkpoint['data'], 'img_dir', 'val', name)
        for name in os.listdir(
            osp.join(seg_checkpoint['data'], 'img_dir', 'val')))
    server = seg_deployment['server']
    out_json, masks = tmp_path / 'results.json', tmp_path / 'masks'
    proc = _client(run_python, repo_root, *images, '--url', server.http_url,
                   '--classes', seg_deployment['folder'], '--save-masks',
                   masks, '--json', out_json, '--batch-size', '2')
    assert proc.returncode == 0, proc.stderr[-3000:]
    classes = seg_checkpoint['classes']
    lines = [line for line in proc.stdout.splitlines() if '\t' in line]
    assert [line.split('\t')[0] for line in lines] == images
    for line in lines:
        shares = line.split('class shares ')[1].split()
        assert all(s.rsplit(':', 1)[0] in classes for s in shares), line
    assert f'Wrote {len(images)} masks to {masks}' in proc.stdout
    report = json.loads(out_json.read_text())
    assert report['failed'] == 0
    assert [r['image'] for r in report['results']] == images
    for record, image in zip(report['results'], images):
        assert set(record['class_fractions']) <= set(classes)
        assert abs(sum(record['class_fractions'].values()) - 1) < 1e-6
        png = masks / (osp.splitext(osp.basename(image))[0] + '.png')
        saved = Image.open(png)
        assert saved.mode == 'P'
        indices = np.asarray(saved)
        assert list(indices.shape) == record['mask_size']
        ids, counts = np.unique(indices, return_counts=True)
        assert {classes[i]: c / indices.size for i, c in zip(ids, counts)} \
            == pytest.approx(record['class_fractions'])


def test_segmentation_class_names_come_from_the_server(
        seg_deployment, seg_checkpoint, run_python, repo_root):
    from dinov3_mm.deploy.client import fetch_served_classes
    server, classes = seg_deployment['server'], seg_checkpoint['classes']
    assert fetch_served_classes(server.http_url, 'http') == list(classes)
    assert fetch_served_classes(server.grpc_url, 'grpc') == list(classes)
    assert fetch_served_classes(server.http_url, 'http', 'other') is None
    val = osp.join(seg_checkpoint['data'], 'img_dir', 'val')
    image = osp.join(val, sorted(os.listdir(val))[0])
    proc = _client(run_python, repo_root, image, '--url', server.grpc_url,
                   '--protocol', 'grpc')
    assert proc.returncode == 0, proc.stderr[-3000:]
    shares = proc.stdout.split('class shares ')[1].split()
    assert shares and all(s.rsplit(':', 1)[0] in classes for s in shares)
