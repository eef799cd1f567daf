"""Weights-only checkpoint reading: clear errors, no code run, ever."""
import pathlib

import pytest
import torch

from dinov3_mm.utils.checkpoint_io import CheckpointError, load_weights_only


class Payload:
    """Unpickling this creates ``marker``: stands for arbitrary code."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker, )


def write_payload_checkpoint(path, marker):
    torch.save({'state_dict': {'w': torch.zeros(2)},
                'meta': Payload(marker)}, path)
    return path


@pytest.mark.parametrize('force_no_weights_only', [None, '1'])
def test_payload_is_refused_and_never_runs(tmp_path, monkeypatch,
                                           force_no_weights_only):
    if force_no_weights_only:
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'code_ran'
    ckpt = write_payload_checkpoint(tmp_path / 'evil.pth', marker)
    with pytest.raises(CheckpointError) as info:
        load_weights_only(str(ckpt))
    message = str(info.value)
    assert str(ckpt) in message
    assert 'weights-only loading does not allow' in message
    assert not marker.exists()


def test_empty_file_is_named(tmp_path):
    empty = tmp_path / 'epoch_3.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError,
                       match=r'epoch_3\.pth is empty \(0 bytes\)'):
        load_weights_only(str(empty))


def test_truncated_file_is_named(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)}}, good)
    data = good.read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_weights_only(str(cut))
    assert f'{cut} ({len(data) // 2} bytes) is truncated' in str(info.value)


def test_text_file_is_not_a_checkpoint(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('hello, not a checkpoint\n')
    with pytest.raises(CheckpointError,
                       match='notes.pth is not a readable checkpoint: it is '
                       'neither a zip archive nor a pickle'):
        load_weights_only(str(text))


def test_missing_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        load_weights_only(str(tmp_path / 'nope.pth'))
    with pytest.raises(CheckpointError, match='is a directory'):
        load_weights_only(str(tmp_path))


def test_reads_torch_bytes_and_safetensors(tmp_path):
    from safetensors.torch import save_file
    tensors = {'a': torch.arange(3.0)}
    torch.save(tensors, tmp_path / 'x.pth')
    assert torch.equal(load_weights_only(str(tmp_path / 'x.pth'))['a'],
                       tensors['a'])
    data = (tmp_path / 'x.pth').read_bytes()
    assert torch.equal(load_weights_only(data, name='x')['a'], tensors['a'])
    save_file(tensors, str(tmp_path / 'x.safetensors'))
    assert torch.equal(
        load_weights_only(str(tmp_path / 'x.safetensors'))['a'], tensors['a'])
    (tmp_path / 'bad.safetensors').write_bytes(b'\x00' * 16)
    with pytest.raises(CheckpointError, match='bad.safetensors is not a '
                       'readable safetensors file'):
        load_weights_only(str(tmp_path / 'bad.safetensors'))
