"""Deployment benchmarks: onnxruntime vs PyTorch eager, Triton vs in-process.

Both use the ViT-S/16 classification config (random weights: speed does not
depend on them) deployed with :func:`dinov3_mm.deploy.deployment.deploy` on
generated shapes images.
"""
import glob
import os.path as osp
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

DEFAULT_CONFIG = 'configs/classification/vits16_linear_probe_shapes.py'


def _block_rates(runners: Dict[str, Callable[[], object]], batch: int,
                 rounds: int, calls: int = 3,
                 pause: float = 0.2) -> Dict[str, float]:
    """Median img/s of each runner, timed in blocks.

    Each round gives every runner in turn a pause, one untimed call and
    ``calls`` timed ones. Timing a runner right after another one is unfair:
    onnxruntime's worker threads keep spinning for a while after a run and
    take the cores from whatever runs next (eager PyTorch measured at less
    than half its speed that way).
    """
    rates: Dict[str, List[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            time.sleep(pause)
            fn()
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                rates[name].append(batch / (time.perf_counter() - start))
    return {name: float(np.median(v)) for name, v in rates.items()}


def _session(path: str, threads: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def deploy_vits(work_dir: str, data_root: str, precision: str,
                config: str = DEFAULT_CONFIG, img_size: int = 224) -> dict:
    """``deploy()`` the config at ``img_size`` on images in ``data_root``."""
    from dinov3_mm.deploy.deployment import deploy
    options = {
        'test_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.pipeline': [
            dict(type='LoadImage'),
            dict(type='ResizeKeepRatioPad', size=img_size),
            dict(type='PackClsInputs')
        ]
    }
    return deploy(config, None, work_dir, precision=precision,
                  cfg_options=options, num_parity_images=8)


def onnx_vs_eager(work_dir: str, data_root: str, batch_sizes=(1, 8),
                  rounds: int = 7, threads: int = 2,
                  config: str = DEFAULT_CONFIG) -> List[Dict]:
    """Throughput of eager PyTorch (fp32, bf16 autocast) and onnxruntime
    fp32 / int8, timed in blocks (:func:`_block_rates`); each round visits
    every runner, so load changes hit all of them alike.

    Returns:
        list[dict]: One row per batch size: ``eager_fp32``, ``eager_bf16``,
        ``ort_fp32``, ``ort_int8`` (img/s) and their ratios to eager fp32.
        (int8 accuracy needs trained weights: ``tools/deploy.py
        --precision int8`` reports its drop.)
    """
    from dinov3_mm.apis import init_model
    from dinov3_mm.deploy import DeployWrapper
    torch.set_num_threads(threads)
    paths = {p: deploy_vits(osp.join(work_dir, p), data_root, p, config)
             for p in ('fp32', 'int8')}
    # speed does not depend on the weights: a fresh random model will do
    wrapper = DeployWrapper(init_model(config, None), 'classification')
    wrapper.eval()
    sessions = {p: _session(s['onnx'], threads) for p, s in paths.items()}
    rows = []
    for batch in batch_sizes:
        x = torch.randn(batch, 3, 224, 224)
        xn = x.numpy()

        def eager_bf16():
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return wrapper(x)

        runners = {
            'eager_fp32': lambda: wrapper(x),
            'eager_bf16': eager_bf16,
            'ort_fp32': lambda: sessions['fp32'].run(None, {'input': xn}),
            'ort_int8': lambda: sessions['int8'].run(None, {'input': xn}),
        }
        with torch.no_grad():
            row = dict(batch=batch, threads=threads,
                       **_block_rates(runners, batch, rounds))
        row['ort_fp32_vs_eager'] = row['ort_fp32'] / row['eager_fp32']
        row['ort_int8_vs_eager'] = row['ort_int8'] / row['eager_fp32']
        row['eager_bf16_vs_eager'] = row['eager_bf16'] / row['eager_fp32']
        rows.append({k: round(v, 3) if isinstance(v, float) else v
                     for k, v in row.items()})
    return rows


def _in_process(onnx_path: str, spec: dict, data: Sequence[bytes],
                requests: int, concurrency: int, threads: int) -> float:
    """img/s of decode + preprocess + onnxruntime, ``concurrency`` threads
    sharing one session, one image per call."""
    from dinov3_mm.utils.image_ops import preprocess_encoded
    session = _session(onnx_path, threads)
    lock = threading.Lock()
    counter = iter(range(requests))

    def work(_):
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            x, _ = preprocess_encoded(data[i % len(data)], spec)
            session.run(None, {'input': x[None]})

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(concurrency)))
    return requests / (time.perf_counter() - start)


def triton_vs_in_process(work_dir: str, data_root: str,
                         concurrency: int = 8, requests: int = 400,
                         threads: int = 2, protocol: str = 'grpc',
                         config: str = DEFAULT_CONFIG) -> Dict:
    """Served throughput (dynamic batching) vs in-process onnxruntime.

    Both do the same work per image: decode the encoded file, resize/pad,
    normalise, run the ViT; ``concurrency`` clients send one image per
    request.
    """
    from dinov3_mm.deploy.client import benchmark, read_files
    from dinov3_mm.deploy.server import TritonServer
    summary = deploy_vits(osp.join(work_dir, 'serve'), data_root, 'fp32',
                          config)
    files = sorted(glob.glob(osp.join(data_root, 'test', '*', '*.png')))
    data = read_files(files)
    spec = summary['spec']
    local = _in_process(summary['onnx'], spec, data, requests, concurrency,
                        threads)
    with TritonServer(summary['repositories']['python']) as server:
        url = server.grpc_url if protocol == 'grpc' else server.http_url
        served = benchmark(url, data, protocol, concurrency=concurrency,
                           requests=requests, warmup=16)
    served.update(in_process_images_per_s=local,
                  served_vs_in_process=served['images_per_s'] / local)
    return {k: round(v, 3) if isinstance(v, float) else v
            for k, v in served.items()}
