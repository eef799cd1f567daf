"""Atomic writes: old or new content, never a torn file; usual file mode."""
import csv
import errno
import os
import stat

import pytest

from dinov3_mm.utils.atomic_write import (atomic_write, atomic_write_bytes,
                                          atomic_write_text,
                                          remove_stale_temp_files)


def test_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(b'abc', tmp_path / 'ckpt.pth')
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert (tmp_path / 'ckpt.pth').read_bytes() == b'abc'


def test_disk_full_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old checkpoint')

    def write_until_full(f):
        f.write(b'new partial')
        raise OSError(errno.ENOSPC, 'No space left on device')

    with pytest.raises(OSError, match='No space left'):
        atomic_write(target, write_until_full)
    assert target.read_bytes() == b'old checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']


def test_text_writes_csv_rows_into_place(tmp_path):
    target = tmp_path / 'out' / 'predictions.csv'

    def write_rows(f):
        writer = csv.writer(f)
        writer.writerow(['path', 'class'])
        writer.writerow(['a\u00e9.png', 'cat'])

    assert atomic_write_text(target, write_rows, newline='') == str(target)
    assert target.read_bytes() == 'path,class\r\na\u00e9.png,cat\r\n'.encode()
    assert sorted(p.name for p in target.parent.iterdir()) == [
        'predictions.csv']


def test_text_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / 'summary.csv'
    target.write_text('old')

    def fail(f):
        f.write('new partial')
        raise ValueError('bad row')

    with pytest.raises(ValueError, match='bad row'):
        atomic_write_text(target, fail)
    assert target.read_text() == 'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['summary.csv']

def test_stale_temp_files_are_removed(tmp_path):
    stale = tmp_path / 'epoch_2.pth.a1b2c3d4.tmp'
    stale.write_bytes(b'half')
    keep = [tmp_path / 'notes.tmp', tmp_path / 'epoch_1.pth',
            tmp_path / 'run.v1.tmp']
    for path in keep:
        path.write_bytes(b'x')
    assert remove_stale_temp_files(tmp_path) == [str(stale)]
    assert all(p.exists() for p in keep) and not stale.exists()


def test_sigkill_during_a_write_leaves_the_old_file(tmp_path, run_python):
    """A process killed in the middle of writing: the target is intact and
    only a temporary file remains, which the next start removes."""
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old complete checkpoint')
    code = (
        'import os, signal\n'
        'from dinov3_mm.utils.atomic_write import atomic_write\n'
        'def write(f):\n'
        "    f.write(b'new but only half')\n"
        '    f.flush()\n'
        '    os.kill(os.getpid(), signal.SIGKILL)\n'
        f'atomic_write({str(target)!r}, write)\n')
    proc = run_python(code)
    assert proc.returncode == -9
    assert target.read_bytes() == b'old complete checkpoint'
    leftovers = [p.name for p in tmp_path.glob('epoch_1.pth.*.tmp')]
    assert len(leftovers) == 1
    assert remove_stale_temp_files(tmp_path) == [
        str(tmp_path / leftovers[0])]
