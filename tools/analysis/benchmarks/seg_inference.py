"""Whole-image vs sliding-window segmentation inference: speed and memory."""
import multiprocessing as mp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dinov3_mm.registry import MODELS

from .common import (BENCH_DTYPES, autocast, read_status_mib,
                     reset_peak_rss_mib, rows_to_markdown, sync)

DEFAULT_CONFIG = 'configs/segmentation/vits16_linear_frozen_seg_shapes.py'


def build_segmentor(config: str, mode: str, crop_size: Tuple[int, int],
                    stride: Tuple[int, int], device: str = 'cpu'):
    """The config's segmentor (random weights), eval mode, set to ``mode``."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'dinov3_mm'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone.pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    model.test_cfg.update(mode=mode, crop_size=tuple(crop_size),
                          stride=tuple(stride), flip=False)
    return model.to(device).eval()


def _time_inference(model, x: torch.Tensor, iters: int, device: str,
                    dtype: Optional[torch.dtype]) -> float:
    """Seconds per ``model.inference`` call, averaged over ``iters``."""
    with torch.inference_mode(), autocast(device, dtype):
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            model.inference(x)
        sync(device)
    return (time.perf_counter() - start) / iters


def _peak_worker(config, mode, crop_size, stride, dtype_name, batch_size,
                 img_size, queue) -> None:
    """Child process: peak RSS growth (MiB) over two inference calls."""
    model = build_segmentor(config, mode, crop_size, stride)
    x = torch.randn(batch_size, 3, img_size, img_size)
    base = reset_peak_rss_mib()
    _time_inference(model, x, 2, 'cpu', BENCH_DTYPES[dtype_name])
    queue.put(read_status_mib('VmHWM') - base)


def peak_inference_mib(config: str, mode: str, crop_size, stride,
                       dtype: str, batch_size: int, img_size: int) -> float:
    """Peak extra CPU memory of inference in ``mode``, in a fresh process."""
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker,
                       args=(config, mode, tuple(crop_size), tuple(stride),
                             dtype, batch_size, img_size, queue))
    proc.start()
    value = queue.get(timeout=1800)
    proc.join()
    return value


def benchmark_whole_vs_slide(config: str = DEFAULT_CONFIG,
                             dtype: str = 'fp32',
                             img_size: int = 512,
                             crop_size: Sequence[int] = (256, 256),
                             stride: Sequence[int] = (171, 171),
                             batch_size: int = 1,
                             rounds: int = 5,
                             iters: int = 3,
                             threads: Optional[int] = None,
                             measure_memory: bool = True
                             ) -> Dict[str, object]:
    """Time whole-image and sliding-window inference alternately.

    Both modes share one model (same weights); each mode's fastest round
    counts.

    Args:
        config (str): Segmentation config; its weights stay random.
        dtype (str): ``'fp32'`` or ``'bf16'`` (autocast).
        img_size (int): Square input side. Defaults to 512.
        crop_size (Sequence[int]): Sliding window ``(h, w)``.
        stride (Sequence[int]): Sliding stride ``(h, w)``.
        batch_size (int): Images per call. Defaults to 1.
        rounds (int): Alternating timing rounds.
        iters (int): Calls per round.
        threads (int, optional): ``torch.set_num_threads`` value.
        measure_memory (bool): Also measure peak memory (subprocesses).

    Returns:
        dict: Images/s of both modes, the slide/whole time ratio, the number
        of windows and (optionally) peak MiB of both.
    """
    if threads:
        torch.set_num_threads(threads)
    cast = BENCH_DTYPES[dtype]
    models = {mode: build_segmentor(config, mode, crop_size, stride)
              for mode in ('whole', 'slide')}
    models['slide'].load_state_dict(models['whole'].state_dict())
    x = torch.randn(batch_size, 3, img_size, img_size)
    for model in models.values():
        _time_inference(model, x, 1, 'cpu', cast)  # warm-up
    times: Dict[str, List[float]] = {'whole': [], 'slide': []}
    order = list(models)
    for _ in range(rounds):
        for mode in order:
            times[mode].append(
                _time_inference(models[mode], x, iters, 'cpu', cast))
        order.reverse()
    best = {k: min(v) for k, v in times.items()}
    rows = -(-max(img_size - crop_size[0], 0) // stride[0]) + 1
    cols = -(-max(img_size - crop_size[1], 0) // stride[1]) + 1
    row = dict(
        dtype=dtype, img_size=img_size, batch_size=batch_size,
        crop=f'{crop_size[0]}x{crop_size[1]}',
        stride=f'{stride[0]}x{stride[1]}', windows=rows * cols,
        threads=torch.get_num_threads(),
        whole_img_s=round(batch_size / best['whole'], 2),
        slide_img_s=round(batch_size / best['slide'], 2),
        slide_over_whole_time=round(best['slide'] / best['whole'], 2))
    if measure_memory:
        del models
        for mode in ('whole', 'slide'):
            row[f'{mode}_peak_mib'] = round(peak_inference_mib(
                config, mode, crop_size, stride, dtype, batch_size,
                img_size), 1)
    return row


def seg_rows_to_markdown(rows: List[Dict[str, object]]) -> str:
    """Render :func:`benchmark_whole_vs_slide` rows as a markdown table."""
    cols = ['dtype', 'img_size', 'batch_size', 'crop', 'stride', 'windows',
            'threads', 'whole_img_s', 'slide_img_s', 'slide_over_whole_time',
            'whole_peak_mib', 'slide_peak_mib']
    return rows_to_markdown(rows, cols)
