"""Clients for the served ensemble: send image files, get labels, masks or
detections.

:class:`ImageClient` wraps ``tritonclient`` (HTTP or gRPC) for the ensemble
written by ``tools/deploy.py``; :func:`run_requests` sends many requests
from several threads (one client each) and times them; :func:`latency_summary`
turns the timings into throughput and p50/p95/p99.
"""
import json
import os.path as osp
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

import numpy as np

PROTOCOLS = ('http', 'grpc')
#: Triton's default port of each protocol, named in messages.
DEFAULT_PORTS = dict(http=8000, grpc=8001)


class ServerUnavailableError(ConnectionError):
    """Nothing answers at the URL, it speaks another protocol, or the model
    is not served there; the message says which and what to do."""


def _host_port(url: str):
    address = url.split('://', 1)[-1].split('/', 1)[0]
    host, sep, port = address.rpartition(':')
    if not sep or not port.isdigit():
        raise ServerUnavailableError(
            f'--url {url} is not HOST:PORT (e.g. 127.0.0.1:8000).')
    return host.strip('[]') or '127.0.0.1', int(port)


def _protocol_client(url: str, protocol: str, timeout: float):
    if protocol == 'http':
        import tritonclient.http as module
        return module.InferenceServerClient(
            url, connection_timeout=timeout, network_timeout=timeout)
    import tritonclient.grpc as module
    return module.InferenceServerClient(url)


def check_server(url: str, protocol: str = 'http', model: str = 'dinov3',
                 timeout: float = 10.0) -> None:
    """Check that a Triton server answers ``protocol`` at ``url`` and serves
    ``model``, before any image is sent.

    Args:
        url (str): ``host:port``.
        protocol (str): ``'http'`` or ``'grpc'``.
        model (str): The ensemble that must be ready.
        timeout (float): Seconds per probe.

    Raises:
        ServerUnavailableError: Nothing listens at ``url``, what listens
            does not speak ``protocol`` (e.g. the HTTP client at the gRPC
            port), or ``model`` is not ready there.
    """
    host, port = _host_port(url)
    other = 'grpc' if protocol == 'http' else 'http'
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ServerUnavailableError(
            f'nothing answers at {url} ({exc.strerror or exc}); is the '
            'server running? Start one with `python -m dinov3_mm.deploy '
            'serve REPO`, or pass its address with --url HOST:PORT.') from exc
    client = _protocol_client(url, protocol, timeout)
    try:
        kwargs = {'client_timeout': timeout} if protocol == 'grpc' else {}
        try:
            live = client.is_server_live(**kwargs)
        except Exception as exc:  # parse errors, resets, gRPC UNAVAILABLE
            raise ServerUnavailableError(
                f'nothing answers {protocol.upper()} at {url} (it accepts '
                f'connections but replies in another protocol); if {url} '
                f'is the {other} port (Triton default {DEFAULT_PORTS[other]})'
                f', add --protocol {other}.') from exc
        if not live:
            raise ServerUnavailableError(
                f'the server at {url} is not live yet; wait until `python -m '
                'dinov3_mm.deploy serve` prints "serving", then retry.')
        try:
            ready = client.is_model_ready(model, **kwargs)
        except Exception:
            ready = False
        if not ready:
            raise ServerUnavailableError(
                f'the server at {url} has no ready model {model!r}; pass the '
                'ensemble name given to tools/deploy.py --name with --model '
                '(default dinov3).')
    finally:
        client.close()


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


def _class_name(index: int, classes: Optional[Sequence[str]]) -> str:
    if classes is not None and 0 <= index < len(classes):
        return str(classes[index])
    return str(index)


def detections(outputs: Dict[str, np.ndarray], index: int) -> dict:
    """The detections of image ``index`` of a detection response, without
    the padding rows.

    Returns:
        dict: ``boxes`` float32 ``(N, 4)`` xyxy original-image pixels,
        ``scores`` ``(N,)``, ``class_ids`` int32 ``(N,)``, ``labels`` (list
        of class names) and ``masks`` uint8 ``(N, H, W)`` 0/1 (None without
        a mask head).
    """
    count = int(outputs['NUM_DETECTIONS'][index].reshape(-1)[0])
    names = outputs['LABELS'][index][:count]
    masks = outputs.get('MASKS')
    return dict(
        boxes=outputs['BOXES'][index][:count],
        scores=outputs['SCORES'][index][:count],
        class_ids=outputs['CLASS_IDS'][index][:count],
        labels=[n.decode() if isinstance(n, bytes) else str(n)
                for n in names],
        masks=None if masks is None else masks[index][:count])


def image_result(outputs: Dict[str, np.ndarray], index: int,
                 classes: Optional[Sequence[str]] = None) -> dict:
    """The result of image ``index`` of a response, JSON-ready.

    Args:
        outputs (dict): Output arrays by name (from :meth:`ImageClient.infer`).
        index (int): The image's position in the request.
        classes (sequence[str], optional): Class names by index, used for
            segmentation masks (labels come named from the server).

    Returns:
        dict: ``detections`` (``[{'label', 'class_id', 'score', 'box'}]``,
        ``box`` ``[x1, y1, x2, y2]`` in original pixels, plus ``mask`` as
        COCO uncompressed RLE for mask models) for detection;
        ``labels`` (``[{'label', 'score'}]``) for classification,
        and ``ood`` (bool) when the deployment has an OOD threshold;
        ``mask_size`` (``[h, w]``) and ``class_fractions`` (class name or
        index to the fraction of pixels) for segmentation; ``embedding_dim``
        and ``norm`` for features.
    """
    if 'BOXES' in outputs:
        from dinov3_mm.utils.det_ops import mask_to_rle
        found = detections(outputs, index)
        items = []
        for i, (box, score, cid, name) in enumerate(zip(
                found['boxes'], found['scores'], found['class_ids'],
                found['labels'])):
            item = dict(label=name, class_id=int(cid), score=float(score),
                        box=[float(v) for v in box])
            if found['masks'] is not None:
                item['mask'] = mask_to_rle(found['masks'][i])
            items.append(item)
        return dict(detections=items)
    if 'LABELS' in outputs:
        result = dict(labels=[
            dict(label=lb.decode() if isinstance(lb, bytes) else str(lb),
                 score=float(sc))
            for lb, sc in zip(outputs['LABELS'][index],
                              outputs['SCORES'][index])])
        if 'OOD' in outputs:
            result['ood'] = bool(outputs['OOD'][index].reshape(-1)[0])
        return result
    if 'MASK' in outputs:
        mask = outputs['MASK'][index]
        ids, counts = np.unique(mask, return_counts=True)
        return dict(mask_size=[int(mask.shape[0]), int(mask.shape[1])],
                    class_fractions={
                        _class_name(int(i), classes): float(c / mask.size)
                        for i, c in zip(ids, counts)})
    emb = outputs['EMBEDDINGS'][index]
    return dict(embedding_dim=int(emb.shape[0]),
                norm=float(np.linalg.norm(emb)))


def describe(outputs: Dict[str, np.ndarray], index: int,
             classes: Optional[Sequence[str]] = None) -> str:
    """One line for image ``index`` of a response (see
    :func:`image_result`)."""
    result = image_result(outputs, index, classes)
    if 'detections' in result:
        return f"{len(result['detections'])} detections " + ' '.join(
            f"{d['label']}:{d['score']:.3f}@"
            f"[{','.join(f'{v:.1f}' for v in d['box'])}]"
            for d in result['detections'])
    if 'labels' in result:
        line = ' '.join(f"{r['label']}:{r['score']:.4f}"
                        for r in result['labels'])
        return line + (' OOD' if result.get('ood') else '')
    if 'class_fractions' in result:
        h, w = result['mask_size']
        share = ' '.join(f'{name}:{frac:.3f}'
                         for name, frac in result['class_fractions'].items())
        return f'mask {h}x{w} class shares {share}'
    return (f"embedding dim {result['embedding_dim']} norm "
            f"{result['norm']:.4f}")


def served_classes(repository: str, model: str = 'dinov3') -> List[str]:
    """Class names of a deployment, from its postprocess step's
    ``postprocess.json``.

    Args:
        repository (str): A Triton repository written by ``tools/deploy.py``
            (``triton_python/`` or ``triton/``) or the deploy work dir
            holding them.
        model (str): The ensemble name.

    Raises:
        FileNotFoundError: No postprocess config for ``model`` there.
    """
    step = osp.join(f'{model}_postprocess', '1', 'postprocess.json')
    for folder in (repository, osp.join(repository, 'triton_python'),
                   osp.join(repository, 'triton')):
        path = osp.join(folder, step)
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                return list(json.load(f).get('classes') or [])
    raise FileNotFoundError(
        f'{repository} holds no {step}; pass the Triton repository that '
        'tools/deploy.py wrote (e.g. work_dirs/deploy/triton_python).')


def fetch_served_classes(url: str, protocol: str = 'http',
                         model: str = 'dinov3',
                         timeout: float = 10.0) -> Optional[List[str]]:
    """Class names the server publishes in the config of ``model``'s
    postprocess step (``tools/deploy.py`` writes them as the parameter
    ``classes``), or None when it publishes none.

    Args:
        url (str): ``host:port`` of the endpoint.
        protocol (str): ``'http'`` or ``'grpc'``.
        model (str): The ensemble name.
        timeout (float): Seconds for the request.
    """
    client = _protocol_client(url, protocol, timeout)
    try:
        if protocol == 'http':
            config = client.get_model_config(f'{model}_postprocess')
        else:
            config = client.get_model_config(
                f'{model}_postprocess', as_json=True,
                client_timeout=timeout)['config']
    except Exception:  # no postprocess step (features) or an older repo
        return None
    finally:
        client.close()
    value = (config.get('parameters') or {}).get('classes') or {}
    text = value.get('string_value')
    return list(json.loads(text)) if text else None


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


def parse_class_names(value: Optional[str],
                      model: str = 'dinov3') -> Optional[List[str]]:
    """Class names given on a command line, or None when ``value`` is None.

    Args:
        value (str, optional): A Triton repository (or deploy work dir)
            that ``tools/deploy.py`` wrote, a text file with one name per
            line, or names separated by commas.
        model (str): The served ensemble's name. Defaults to ``'dinov3'``.

    Raises:
        FileNotFoundError: ``value`` is a folder without a served
            postprocess config.
    """
    if value is None:
        return None
    if osp.isdir(value):
        return served_classes(value, model)
    if osp.isfile(value):
        with open(value, encoding='utf-8') as f:
            return [line.strip() for line in f if line.strip()]
    return [c.strip() for c in value.split(',') if c.strip()]


def save_served_masks(out_dir: str, paths: Sequence[str],
                      outputs_per_image: Sequence[Optional[tuple]],
                      classes: Optional[Sequence[str]]) -> int:
    """Write the masks a segmentation deployment returned as palette PNGs.

    Args:
        out_dir (str): Folder; one PNG per image, named after its path.
        paths (Sequence[str]): The images sent.
        outputs_per_image (Sequence): Per image, ``(outputs, index)`` of
            its response (``outputs['MASK'][index]`` is its mask), or None
            for a refused image.
        classes (Sequence[str], optional): Class names (palette size).

    Returns:
        int: The number of masks written.
    """
    from dinov3_mm.apis.seg_inference import (relative_png_names,
                                              save_index_png)
    from dinov3_mm.visualization.seg_overlay import default_palette
    names = relative_png_names(paths, None)
    written = 0
    for name, item in zip(names, outputs_per_image):
        if item is None or 'MASK' not in item[0]:
            continue
        outputs, index = item
        mask = outputs['MASK'][index]
        num = max(len(classes or ()), int(mask.max(initial=0)) + 1)
        save_index_png(mask, osp.join(out_dir, name), default_palette(num))
        written += 1
    return written
