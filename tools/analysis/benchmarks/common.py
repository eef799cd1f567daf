"""Helpers shared by the benchmarks: dtypes, timing, peak RSS, tables."""
import contextlib
from typing import Callable, Dict, List, Optional

import torch

BENCH_DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def autocast(device: str, dtype: Optional[torch.dtype]):
    """``torch.autocast`` to ``dtype`` on ``device``; no-op for ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def sync(device: str) -> None:
    """Wait for queued CUDA work so that a timer sees it finished."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def read_status_mib(field: str) -> float:
    """A memory field (``VmRSS``, ``VmHWM``) of ``/proc/self/status``, MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'{field} not in /proc/self/status')


def reset_peak_rss_mib() -> float:
    """Reset the process' peak RSS (Linux ``clear_refs``); return current RSS."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    return read_status_mib('VmRSS')


def rows_to_markdown(rows: List[Dict[str, object]],
                     cols: List[str]) -> str:
    """Render benchmark rows as a markdown table with columns ``cols``."""
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    for row in rows:
        lines.append('| ' + ' | '.join(str(row.get(c, '')) for c in cols) +
                     ' |')
    return '\n'.join(lines)


def best_of_alternating(timers: Dict[str, Callable[[], float]],
                        rounds: int) -> Dict[str, float]:
    """Fastest result of each timer over ``rounds`` rounds.

    Every round calls each timer once, and the order flips every round, so
    no side always runs first (warm caches, turbo, a neighbour's load).

    Args:
        timers (dict): A name and a function returning seconds, per side.
        rounds (int): Rounds to run.

    Returns:
        dict: The minimum seconds per name.
    """
    times: Dict[str, List[float]] = {name: [] for name in timers}
    order = list(timers)
    for _ in range(rounds):
        for name in order:
            times[name].append(timers[name]())
        order.reverse()
    return {name: min(values) for name, values in times.items()}
