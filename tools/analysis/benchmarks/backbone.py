"""Side-by-side speed and memory measurement of our ViT and the HF reference."""
import multiprocessing as mp
import tempfile
import time
from typing import Callable, Dict, List, Optional

import torch

from .common import (BENCH_DTYPES, autocast, read_status_mib,
                     reset_peak_rss_mib, rows_to_markdown, sync)
from .compute_floor import floor_columns, floor_columns_in


def _build_pair(arch: str, device: str):
    """Our ViT and a ``transformers.DINOv3ViTModel`` with the same weights."""
    import transformers

    from dinov3_mm.models.backbones import DINOv3ViT
    from dinov3_mm.models.backbones.weights import save_backbone

    torch.manual_seed(0)
    ours = DINOv3ViT(arch=arch, out_type='raw').eval()
    with tempfile.TemporaryDirectory() as tmp:
        save_backbone(ours, tmp, 'hf')
        ref = transformers.DINOv3ViTModel.from_pretrained(
            tmp, attn_implementation='sdpa').eval()
    return ours.to(device), ref.to(device)


def _runner(model: torch.nn.Module, is_ref: bool) -> Callable:
    if is_ref:
        return lambda x: model(pixel_values=x).last_hidden_state
    return lambda x: model.forward_features(x)['x_norm_patchtokens']


def _time(fn: Callable, x: torch.Tensor, iters: int, device: str,
          dtype) -> float:
    """Seconds per forward pass, averaged over ``iters`` passes."""
    with torch.inference_mode(), autocast(device, dtype):
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            fn(x)
        sync(device)
    return (time.perf_counter() - start) / iters


def _peak_memory_worker(arch, dtype_name, device, batch_size, img_size, which,
                        queue):
    """Child process: peak memory (MiB) of forward passes of one model."""
    ours, ref = _build_pair(arch, device)
    model = ref if which == 'hf' else ours
    del ours, ref
    fn = _runner(model, which == 'hf')
    x = torch.randn(batch_size, 3, img_size, img_size, device=device)
    dtype = BENCH_DTYPES[dtype_name]
    if torch.device(device).type == 'cuda':
        _time(fn, x, 1, device, dtype)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _time(fn, x, 2, device, dtype)
        queue.put((torch.cuda.max_memory_allocated() - base) / 2**20)
        return
    base = reset_peak_rss_mib()
    _time(fn, x, 2, device, dtype)
    queue.put(read_status_mib('VmHWM') - base)


def peak_memory_mib(arch: str, dtype_name: str, device: str, batch_size: int,
                    img_size: int, which: str) -> float:
    """Peak extra memory of the forward passes, measured in a fresh process.

    On CPU this is the peak RSS during the passes above the RSS before them
    (Linux ``/proc``); on
    CUDA the peak allocated memory above the weights.
    """
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_peak_memory_worker,
        args=(arch, dtype_name, device, batch_size, img_size, which, queue))
    proc.start()
    value = queue.get(timeout=1800)
    proc.join()
    return value


def benchmark_vit_vs_hf(arch: str,
                        dtype: str = 'fp32',
                        device: str = 'cpu',
                        batch_size: int = 8,
                        img_size: int = 224,
                        rounds: int = 5,
                        iters: int = 5,
                        threads: Optional[int] = None,
                        measure_memory: bool = True,
                        floor: bool = False) -> Dict[str, object]:
    """Time our ViT and the HF model alternately; report img/s and speed-up.

    Args:
        arch (str): A :data:`~dinov3_mm.models.backbones.dinov3_vit.ARCH_ZOO`
            name.
        dtype (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (autocast).
        device (str): ``'cpu'`` or ``'cuda'``.
        batch_size (int): Images per pass. Defaults to 8.
        img_size (int): Square image side. Defaults to 224.
        rounds (int): Alternating rounds; each model's fastest round counts
            (the least disturbed by other load on the machine).
        iters (int): Passes per round.
        threads (int, optional): ``torch.set_num_threads`` value.
        measure_memory (bool): Also measure peak memory (in subprocesses).
        floor (bool): Also report the compute floor of the reference's
            forward pass (see :func:`.compute_floor.floor_columns`).

    Returns:
        dict: arch, dtype, device, batch, img/s of both, speed-up, peak MiB.
    """
    if threads:
        torch.set_num_threads(threads)
    ours, ref = _build_pair(arch, device)
    x = torch.randn(batch_size, 3, img_size, img_size, device=device)
    cast = BENCH_DTYPES[dtype]
    fns = {'ours': _runner(ours, False), 'hf': _runner(ref, True)}
    for fn in fns.values():
        _time(fn, x, 2, device, cast)  # warm-up
    times: Dict[str, List[float]] = {'ours': [], 'hf': []}
    order = list(fns)
    for _ in range(rounds):
        for name in order:
            times[name].append(_time(fns[name], x, iters, device, cast))
        order.reverse()  # neither model always runs first
    best = {k: min(v) for k, v in times.items()}
    row = dict(
        arch=arch,
        dtype=dtype,
        device=device,
        batch_size=batch_size,
        img_size=img_size,
        threads=torch.get_num_threads(),
        ours_img_s=round(batch_size / best['ours'], 2),
        hf_img_s=round(batch_size / best['hf'], 2),
        speedup=round(best['hf'] / best['ours'], 3),
    )
    if floor:
        row.update(floor_columns(lambda: _time(fns['hf'], x, 1, device,
                                               cast),
                                 best['hf'], batch_size, dtype, device))
    if measure_memory:
        del ours, ref
        for which in ('ours', 'hf'):
            row[f'{which}_peak_mib'] = round(
                peak_memory_mib(arch, dtype, device, batch_size, img_size,
                                which), 1)
    return row


def to_markdown(rows: List[Dict[str, object]]) -> str:
    """Render :func:`benchmark_vit_vs_hf` rows as a markdown table."""
    return rows_to_markdown(rows, [
        'arch', 'dtype', 'device', 'batch_size', 'img_size', 'threads',
        'ours_img_s', 'hf_img_s', 'speedup', 'ours_peak_mib', 'hf_peak_mib'
    ] + floor_columns_in(rows))
