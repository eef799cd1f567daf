"""``python -m dinov3_mm.deploy serve``: ports taken, early exits, cleanup.

The command must say when a port it should listen on is taken (and never
print "serving" because another process answered), report a tritonserver
that exits while starting with its log's last lines, and remove its
temporary folder however it ends. A plain socket holds the ports; the real
tritonserver of the nvidia-pytriton wheel serves a one-model repository.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from dinov3_mm.deploy.server import free_port, port_in_use

ECHO_CONFIG = '''name: "echo"
backend: "python"
max_batch_size: 0
input [ { name: "IN" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 1 ] } ]
'''
ECHO_MODEL = '''import triton_python_backend_utils as pb_utils


class TritonPythonModel:

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor(
            "OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())])
            for r in requests]
'''


def write_echo_repository(root, broken=False):
    """A repository with one Python-backend model (``echo``); ``broken``:
    its model.py raises while loading."""
    model = root / 'echo'
    (model / '1').mkdir(parents=True)
    (model / 'config.pbtxt').write_text(ECHO_CONFIG)
    (model / '1' / 'model.py').write_text(
        'raise RuntimeError("boom while loading")\n' if broken else
        ECHO_MODEL)
    return root


@pytest.fixture
def held_port():
    """A port a plain socket listens on (another process, to the server)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    sock.listen(4)
    yield sock.getsockname()[1]
    sock.close()


def _serve_cmd(repo, *options):
    return [sys.executable, '-m', 'dinov3_mm.deploy', 'serve', str(repo),
            *map(str, options)]


def _env(repo_root, tmp):
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, PYTHONPATH=str(repo_root), TMPDIR=str(tmp))


def _serve(repo, repo_root, tmp, *options, timeout=180):
    return subprocess.run(_serve_cmd(repo, *options), capture_output=True,
                          text=True, env=_env(repo_root, tmp),
                          cwd=str(repo_root), timeout=timeout)


def _leftovers(tmp):
    return [p.name for p in tmp.iterdir()
            if p.name.startswith('dinov3_mm_triton_')]


def test_port_in_use_helper(held_port):
    assert port_in_use(held_port)
    assert not port_in_use(free_port())


@pytest.mark.parametrize('option', ['--http-port', '--grpc-port',
                                    '--metrics-port'])
def test_taken_port_is_reported_before_starting(option, held_port, tmp_path,
                                                repo_root):
    repo = write_echo_repository(tmp_path / 'repo')
    ports = {'--http-port': free_port(), '--grpc-port': free_port(),
             '--metrics-port': free_port()}
    ports[option] = held_port
    args = [a for item in ports.items() for a in item]
    proc = _serve(repo, repo_root, tmp_path / 'tmp', *args, timeout=60)
    role = option[2:].split('-')[0]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (f'error: port {held_port} ({role}) is already in use (by '
            f'another process); choose another with {option}'
            ) in proc.stderr.splitlines()
    assert 'Traceback' not in proc.stderr
    assert 'serving' not in proc.stdout
    assert _leftovers(tmp_path / 'tmp') == []


def test_server_exiting_while_starting_is_reported(tmp_path, repo_root):
    repo = write_echo_repository(tmp_path / 'repo', broken=True)
    proc = _serve(repo, repo_root, tmp_path / 'tmp', '--http-port',
                  free_port(), '--grpc-port', free_port())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'serving' not in proc.stdout
    # the quoted server log may hold the model's traceback, ours must not
    assert 'Traceback' not in proc.stderr.split('error: tritonserver')[0]
    assert 'error: tritonserver exited with code' in proc.stderr
    assert 'boom while loading' in proc.stderr
    assert _leftovers(tmp_path / 'tmp') == []


def _wait_for_line(proc, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            return line
        if proc.poll() is not None:
            return ''
    return ''


@pytest.mark.parametrize('stop', [signal.SIGTERM, signal.SIGINT])
def test_serves_then_stops_and_cleans_up(stop, tmp_path, repo_root):
    repo = write_echo_repository(tmp_path / 'repo')
    http = free_port()
    tmp = tmp_path / 'tmp'
    proc = subprocess.Popen(
        _serve_cmd(repo, '--http-port', http, '--grpc-port', free_port()),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(repo_root, tmp), cwd=str(repo_root))
    try:
        line = _wait_for_line(proc)
        assert line.startswith(f'serving {repo}: HTTP 127.0.0.1:{http}'), (
            line + proc.stderr.read() if proc.poll() is not None else line)
        assert len(_leftovers(tmp)) == 1
        url = f'http://127.0.0.1:{http}/v2/models/echo/ready'
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    finally:
        proc.send_signal(stop)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err[-2000:]
    assert _leftovers(tmp) == []
    assert not port_in_use(http)
