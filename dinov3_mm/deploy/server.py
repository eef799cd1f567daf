"""A local Triton Inference Server on loopback, for tests and trials.

Starts the ``tritonserver`` binary shipped in the ``nvidia-pytriton`` wheel
against a model repository, on 127.0.0.1 with free ports, waits until the
server is ready and stops it cleanly::

    with TritonServer('work_dirs/deploy/triton_python') as server:
        client = tritonclient.http.InferenceServerClient(server.http_url)

That build has the Python backend only: serve the ``triton_python``
repository that ``tools/deploy.py`` writes (onnxruntime inside the Python
backend); the ``triton`` repository (``platform: "onnxruntime_onnx"``) needs
a full Triton image such as ``nvcr.io/nvidia/tritonserver``.

A ``tritonserver`` that caps HTTP bodies (``--http-max-input-size``, newer
than the 2.51 shipped here) gets a cap that lets a full batch of images at
the repository's byte limit through, so the preprocessing's own limit
answers oversized images.
"""
import functools
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import List, Optional, Sequence


class TritonServerError(RuntimeError):
    """The server could not be found, started or made ready."""


class PortInUseError(TritonServerError):
    """A port the server should listen on is taken by another process.

    Attributes:
        role (str): ``'http'``, ``'grpc'`` or ``'metrics'``.
        port (int): The port.
    """

    def __init__(self, role: str, port: int):
        super().__init__(f'port {port} ({role}) is already in use (by another '
                         'process)')
        self.role, self.port = role, port


def port_in_use(port: int, host: str = '127.0.0.1') -> bool:
    """Whether a process listens on (or has bound) ``host:port``.

    ``SO_REUSEADDR`` lets the probe bind over connections in TIME_WAIT, as
    tritonserver does, so only a live socket counts as in use.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _pytriton_dirs():
    try:
        import pytriton
    except ImportError as exc:
        raise TritonServerError(
            'tritonserver comes with the nvidia-pytriton wheel: pip install '
            "-e '.[serve]'") from exc
    root = osp.join(osp.dirname(pytriton.__file__), 'tritonserver')
    libs = osp.join(osp.dirname(osp.dirname(pytriton.__file__)),
                    'nvidia_pytriton.libs')
    return root, libs


def _backend_dir(root: str, work: str) -> str:
    """A backends folder whose Python backend has this interpreter's stub."""
    version = f'{sys.version_info[0]}.{sys.version_info[1]}'
    stub = osp.join(root, 'python_backend_stubs', version,
                    'triton_python_backend_stub')
    if not osp.isfile(stub):
        raise TritonServerError(f'nvidia-pytriton has no Python backend stub '
                                f'for Python {version} ({stub}).')
    python = osp.join(work, 'backends', 'python')
    os.makedirs(python)
    src = osp.join(root, 'backends', 'python')
    for name in os.listdir(src):
        if name != '__pycache__':
            os.symlink(osp.join(src, name), osp.join(python, name))
    shutil.copy(stub, osp.join(python, 'triton_python_backend_stub'))
    return osp.join(work, 'backends')


@functools.lru_cache(maxsize=4)
def _help_text(binary: str, libs: str) -> str:
    try:
        return subprocess.run(
            [binary, '--help'], capture_output=True, text=True, timeout=30,
            env=dict(os.environ, LD_LIBRARY_PATH=libs)).stdout
    except (OSError, subprocess.SubprocessError):
        return ''


def http_input_args(repository: str, help_text: str,
                    extra_args: Sequence[str] = ()) -> List[str]:
    """``--http-max-input-size`` for servers that cap HTTP bodies.

    Args:
        repository (str): The model repository.
        help_text (str): ``tritonserver --help``.
        extra_args (sequence[str]): Options given by the user; one that
            sets the cap wins.

    Returns:
        list[str]: The option, or nothing when the server has no cap, the
        user set it or the repository has no byte limit.
    """
    from .triton_repo import repository_http_input_size
    option = '--http-max-input-size'
    if option not in help_text or any(
            a.startswith(option) for a in extra_args):
        return []
    size = repository_http_input_size(repository)
    return [] if size is None else [f'{option}={size}']


class TritonServer:
    """``tritonserver`` as a child process on 127.0.0.1.

    Args:
        model_repository (str): The repository folder.
        http_port (int, optional): Defaults to a free port.
        grpc_port (int, optional): Defaults to a free port.
        metrics_port (int, optional): Prometheus metrics; off when None.
        startup_timeout (float): Seconds to wait for readiness. Defaults
            to 180.
        log_path (str, optional): Server log file; default: a temporary one
            (its tail is quoted when the server fails).
        extra_args (sequence[str]): More ``tritonserver`` options.
    """

    def __init__(self,
                 model_repository: str,
                 http_port: Optional[int] = None,
                 grpc_port: Optional[int] = None,
                 metrics_port: Optional[int] = None,
                 startup_timeout: float = 180.0,
                 log_path: Optional[str] = None,
                 extra_args: Sequence[str] = ()):
        if not osp.isdir(model_repository):
            raise TritonServerError(
                f'Model repository {model_repository} does not exist; write '
                'one with tools/deploy.py.')
        self.model_repository = osp.abspath(model_repository)
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.metrics_port = metrics_port
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self._work = tempfile.mkdtemp(prefix='dinov3_mm_triton_')
        self.log_path = log_path or osp.join(self._work, 'tritonserver.log')
        self._process: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def http_url(self) -> str:
        return f'127.0.0.1:{self.http_port}'

    @property
    def grpc_url(self) -> str:
        return f'127.0.0.1:{self.grpc_port}'

    def command(self, backend_dir: str) -> List[str]:
        """The ``tritonserver`` command line."""
        root, libs = _pytriton_dirs()
        binary = osp.join(root, 'bin', 'tritonserver')
        cmd = [
            binary,
            f'--model-repository={self.model_repository}',
            f'--backend-directory={backend_dir}',
            '--http-address=127.0.0.1', f'--http-port={self.http_port}',
            '--grpc-address=127.0.0.1', f'--grpc-port={self.grpc_port}',
            '--exit-timeout-secs=10', '--log-verbose=0'
        ]
        if self.metrics_port:
            cmd += ['--allow-metrics=true', '--metrics-address=127.0.0.1',
                    f'--metrics-port={self.metrics_port}']
        else:
            cmd.append('--allow-metrics=false')
        cmd += http_input_args(self.model_repository,
                               _help_text(binary, libs), self.extra_args)
        return cmd + self.extra_args

    def _env(self, libs: str) -> dict:
        env = dict(os.environ)
        env['LD_LIBRARY_PATH'] = os.pathsep.join(
            p for p in (libs, env.get('LD_LIBRARY_PATH')) if p)
        # the Python backend stub finds this environment's packages via PATH
        env['PATH'] = os.pathsep.join(
            (osp.dirname(sys.executable), env.get('PATH', '')))
        return env

    def start(self) -> 'TritonServer':
        """Start the server and wait until it reports ready.

        Raises:
            TritonServerError: The process exited or did not become ready
                within ``startup_timeout``; the message quotes its log.
        """
        if self._process is not None:
            raise TritonServerError('This server is already started.')
        try:
            self.check_ports()
        except PortInUseError:
            self.stop()
            raise
        root, libs = _pytriton_dirs()
        backend_dir = _backend_dir(root, self._work)
        self._log = open(self.log_path, 'ab')
        self._process = subprocess.Popen(
            self.command(backend_dir), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, env=self._env(libs),
            start_new_session=True)
        try:
            if self._wait_until_ready():
                return self
            tail = self.log_tail()
        except BaseException:  # e.g. Ctrl+C: never leave the server behind
            self.stop()
            raise
        self.stop()
        raise TritonServerError(
            f'tritonserver not ready after {self.startup_timeout:.0f} s:\n'
            + tail)

    def ports(self) -> dict:
        """The ports this server listens on, by role."""
        ports = dict(http=self.http_port, grpc=self.grpc_port)
        if self.metrics_port:
            ports['metrics'] = self.metrics_port
        return ports

    def check_ports(self) -> None:
        """Raise :class:`PortInUseError` if another process holds a port."""
        for role, port in self.ports().items():
            if port_in_use(port):
                raise PortInUseError(role, port)

    def _owns_http_port(self) -> bool:
        """Whether the started process itself listens on the HTTP port
        (True when that cannot be told: no psutil or no permission)."""
        try:
            import psutil
            process = psutil.Process(self._process.pid)
            listing = getattr(process, 'net_connections', None) or getattr(
                process, 'connections')
            connections = listing(kind='tcp')
        except Exception:  # psutil missing, process gone, access denied
            return True
        return any(c.status == psutil.CONN_LISTEN
                   and c.laddr.port == self.http_port for c in connections)

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise TritonServerError(
                    f'tritonserver exited with code {code} while starting:\n'
                    + self.log_tail())
            if self.is_ready():
                return self._check_own_ready()
            time.sleep(0.25)
        return False

    def _check_own_ready(self) -> bool:
        """A ready answer counts only if it came from the started process."""
        if self._process.poll() is not None or not self._owns_http_port():
            code = self._process.poll()
            raise TritonServerError(
                f'another process answers on port {self.http_port}; the '
                'started tritonserver '
                + (f'exited with code {code}' if code is not None else
                   'does not listen there') + ':\n' + self.log_tail())
        return True

    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def is_ready(self) -> bool:
        """Whether ``/v2/health/ready`` answers 200."""
        url = f'http://{self.http_url}/v2/health/ready'
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, chars: int = 6000) -> str:
        """The last ``chars`` characters of the server log."""
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')[-chars:]
        except OSError:
            return ''

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT (graceful: in-flight requests finish), SIGKILL if stuck;
        then remove the temporary folder (backends, default log)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> 'TritonServer':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
