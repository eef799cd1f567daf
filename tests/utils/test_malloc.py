"""retain_freed_memory: large tensors come from malloc's heap and their
memory stays in the process after they are freed."""
import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from dinov3_mm.utils import malloc

pytestmark = pytest.mark.skipif(
    malloc._glibc() is None or not hasattr(ctypes.CDLL(None), 'mallinfo2'),
    reason='needs glibc >= 2.33 (mallinfo2)')

# Allocates and touches a 200 MiB tensor, frees it, and prints malloc's
# bytes in mmap'ed blocks while it lived and the heap bytes kept afterwards.
PROBE = textwrap.dedent('''
    import ctypes, importlib.util, sys
    import torch
    # the module alone: importing dinov3_mm would take seconds
    spec = importlib.util.spec_from_file_location('malloc', sys.argv[2])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    retain_freed_memory = module.retain_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
            'fsmblks', 'uordblks', 'fordblks', 'keepcost')]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    applied = retain_freed_memory() if sys.argv[1] == 'retain' else False
    x = torch.ones(50 * 2**20)  # 200 MiB
    mmapped_while_alive = libc.mallinfo2().hblkhd
    del x
    print(applied, mmapped_while_alive >> 20, libc.mallinfo2().arena >> 20)
''')


def _probe(mode, **env):
    out = subprocess.run(
        [sys.executable, '-c', PROBE, mode, malloc.__file__],
        capture_output=True, text=True,
        check=True, timeout=120, env=dict(os.environ, **env)).stdout.split()
    return out[0] == 'True', int(out[1]), int(out[2])


def test_large_blocks_come_from_the_heap_and_stay():
    applied, mmapped_mib, heap_after_free_mib = _probe('retain')
    assert applied
    assert mmapped_mib < 200
    assert heap_after_free_mib >= 200


def test_default_malloc_maps_and_returns_large_blocks():
    applied, mmapped_mib, heap_after_free_mib = _probe('default')
    assert not applied
    assert mmapped_mib >= 200
    assert heap_after_free_mib < 200


def test_opt_out_by_environment():
    applied, mmapped_mib, _ = _probe('retain', DINOV3_MM_MALLOC='default')
    assert not applied
    assert mmapped_mib >= 200
