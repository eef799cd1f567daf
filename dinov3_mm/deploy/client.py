"""Clients for the served ensemble: send image files, get labels or masks.

:class:`ImageClient` wraps ``tritonclient`` (HTTP or gRPC) for the ensemble
written by ``tools/deploy.py``; :func:`run_requests` sends many requests
from several threads (one client each) and times them; :func:`latency_summary`
turns the timings into throughput and p50/p95/p99.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

import numpy as np

PROTOCOLS = ('http', 'grpc')


class ImageClient:
    """Infer encoded images with a served dinov3_mm ensemble.

    Args:
        url (str): ``host:port`` of the HTTP or gRPC endpoint.
        protocol (str): ``'http'`` or ``'grpc'``. Defaults to ``'http'``.
        model (str): Ensemble name. Defaults to ``'dinov3'``.
        timeout (float): Seconds per request. Defaults to 60.
    """

    def __init__(self, url: str, protocol: str = 'http',
                 model: str = 'dinov3', timeout: float = 60.0):
        if protocol not in PROTOCOLS:
            raise ValueError(f'protocol must be one of {PROTOCOLS}, got '
                             f'{protocol!r}.')
        self.protocol, self.model, self.timeout = protocol, model, timeout
        if protocol == 'http':
            import tritonclient.http as module
            self.client = module.InferenceServerClient(
                url, connection_timeout=timeout, network_timeout=timeout)
        else:
            import tritonclient.grpc as module
            self.client = module.InferenceServerClient(url)
        self._module = module
        metadata = self.client.get_model_metadata(model)
        outputs = (metadata['outputs'] if isinstance(metadata, dict) else
                   [dict(name=o.name) for o in metadata.outputs])
        self.output_names = [o['name'] for o in outputs]

    def infer(self, images: Sequence[bytes]) -> Dict[str, np.ndarray]:
        """Outputs (by name) for a batch of encoded images.

        Raises:
            tritonclient.utils.InferenceServerException: The server refused
                the request. ``status()`` is ``'400'`` (HTTP) or
                ``'StatusCode.INVALID_ARGUMENT'`` (gRPC) when the request is
                at fault (unreadable image, above the deployment's
                ``--max-image-pixels`` / ``--max-image-bytes``; the message
                names the image's index in the request), 500 / INTERNAL for
                a server fault.
        """
        data = np.array([[bytes(b)] for b in images], dtype=np.object_)
        inp = self._module.InferInput('IMAGE', list(data.shape), 'BYTES')
        inp.set_data_from_numpy(data)
        outputs = [self._module.InferRequestedOutput(n)
                   for n in self.output_names]
        kwargs = ({'client_timeout': self.timeout}
                  if self.protocol == 'grpc' else {})
        result = self.client.infer(self.model, [inp], outputs=outputs,
                                   **kwargs)
        return {n: result.as_numpy(n) for n in self.output_names}

    def close(self) -> None:
        self.client.close()


def run_requests(url: str,
                 batches: Sequence[Sequence[bytes]],
                 protocol: str = 'http',
                 model: str = 'dinov3',
                 concurrency: int = 1,
                 timeout: float = 60.0) -> List[dict]:
    """Send every batch once, from ``concurrency`` threads.

    Args:
        url (str): Server endpoint.
        batches (sequence): Encoded images per request.
        protocol (str): ``'http'`` or ``'grpc'``.
        model (str): Ensemble name.
        concurrency (int): Client threads, each with its own connection.
        timeout (float): Seconds per request.

    Returns:
        list[dict]: Per request, in order: ``outputs`` (or None),
        ``error`` (str or None), ``latency`` (seconds).
    """
    local = threading.local()
    clients: List[ImageClient] = []
    lock = threading.Lock()

    def send(images):
        if not hasattr(local, 'client'):
            local.client = ImageClient(url, protocol, model, timeout)
            with lock:
                clients.append(local.client)
        start = time.perf_counter()
        try:
            outputs, error = local.client.infer(images), None
        except Exception as exc:  # a failed request is a result too
            outputs, error = None, str(exc)
        return dict(outputs=outputs, error=error,
                    latency=time.perf_counter() - start)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(send, batches))
    finally:
        for client in clients:
            client.close()


def benchmark(url: str,
              data: Sequence[bytes],
              protocol: str = 'http',
              model: str = 'dinov3',
              concurrency: int = 1,
              batch_size: int = 1,
              requests: int = 200,
              warmup: int = 10,
              timeout: float = 60.0) -> dict:
    """Send ``requests`` batches cycling over ``data`` and time them.

    ``warmup`` untimed requests go first. Returns :func:`latency_summary`
    plus ``protocol``, ``concurrency`` and ``batch_size``.
    """
    batches = batched(data, batch_size)
    pick = [batches[i % len(batches)] for i in range(requests)]
    run = dict(protocol=protocol, model=model, concurrency=concurrency,
               timeout=timeout)
    run_requests(url, pick[:warmup], **run)
    start = time.perf_counter()
    results = run_requests(url, pick, **run)
    summary = latency_summary(results, time.perf_counter() - start,
                              batch_size)
    summary.update(protocol=protocol, concurrency=concurrency,
                   batch_size=batch_size)
    return summary


def latency_summary(results: Sequence[dict], wall_seconds: float,
                    images_per_request: int) -> dict:
    """Throughput and latency percentiles of :func:`run_requests` results.

    Returns:
        dict: ``requests``, ``failed``, ``images_per_s``, ``requests_per_s``
        and ``p50_ms`` / ``p95_ms`` / ``p99_ms`` / ``mean_ms``.
    """
    ok = np.array([r['latency'] for r in results if r['error'] is None])
    ms = ok * 1000 if ok.size else np.array([np.nan])
    return dict(
        requests=len(results),
        failed=sum(r['error'] is not None for r in results),
        requests_per_s=len(ok) / wall_seconds,
        images_per_s=len(ok) * images_per_request / wall_seconds,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()))


def describe(outputs: Dict[str, np.ndarray], index: int) -> str:
    """One line for image ``index`` of a response."""
    if 'LABELS' in outputs:
        labels = outputs['LABELS'][index]
        scores = outputs['SCORES'][index]
        return ' '.join(f'{(lb.decode() if isinstance(lb, bytes) else lb)}'
                        f':{s:.4f}' for lb, s in zip(labels, scores))
    if 'MASK' in outputs:
        mask = outputs['MASK'][index]
        ids, counts = np.unique(mask, return_counts=True)
        share = ' '.join(f'{i}:{c / mask.size:.3f}'
                         for i, c in zip(ids, counts))
        return f'mask {mask.shape[0]}x{mask.shape[1]} class shares {share}'
    emb = outputs['EMBEDDINGS'][index]
    return f'embedding dim {emb.shape[0]} norm {np.linalg.norm(emb):.4f}'


def read_files(paths: Sequence[str]) -> List[bytes]:
    """The bytes of every file."""
    out = []
    for path in paths:
        with open(path, 'rb') as f:
            out.append(f.read())
    return out


def batched(items: Sequence, size: int) -> List[list]:
    """``items`` in consecutive chunks of ``size``."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def stats_line(summary: dict, label: Optional[str] = None) -> str:
    """A one-line benchmark summary."""
    head = f'{label}: ' if label else ''
    return (f"{head}{summary['requests']} requests ({summary['failed']} "
            f"failed), {summary['images_per_s']:.1f} img/s, latency p50 "
            f"{summary['p50_ms']:.1f} ms, p95 {summary['p95_ms']:.1f} ms, "
            f"p99 {summary['p99_ms']:.1f} ms")
