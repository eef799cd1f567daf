"""mmengine's checkpoint schemes read weights-only (local, http, model zoo)."""
import functools
import http.server
import pathlib
import threading

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

import dinov3_mm  # noqa: F401  (registers the weights-only loaders)
from dinov3_mm.utils.checkpoint_io import CheckpointError


class _Touch:

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return pathlib.Path.touch, (self.path, )


@pytest.fixture
def served(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``."""
    root = tmp_path / 'www'
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(root))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize('env', [None, '1'])
def test_http_checkpoint_loads_weights_only(served, tmp_path, monkeypatch,
                                            env):
    if env:
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', env)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    root, url = served
    marker = tmp_path / 'code_ran'
    torch.save({'state_dict': {'w': torch.arange(3.0)}}, root / 'good.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _Touch(marker)},
               root / 'evil.pth')

    good = _load_checkpoint(f'{url}/good.pth', map_location='cpu')
    assert torch.equal(good['state_dict']['w'], torch.arange(3.0))
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    assert len(list(cache.glob('*-good.pth'))) == 1
    # another URL with the same file name is fetched, not taken from cache
    (root / 'other').mkdir()
    torch.save({'state_dict': {'w': torch.ones(2)}}, root / 'other' /
               'good.pth')
    other = _load_checkpoint(f'{url}/other/good.pth', map_location='cpu')
    assert torch.equal(other['state_dict']['w'], torch.ones(2))
    with pytest.raises(CheckpointError,
                       match=f'{url}/evil.pth holds Python objects'):
        _load_checkpoint(f'{url}/evil.pth', map_location='cpu')
    assert not marker.exists()


@pytest.mark.parametrize('name', ['torchvision://resnet50',
                                  'open-mmlab://resnet50_v1c',
                                  'mmcls://vit_base'])
def test_model_zoo_names_are_refused(name):
    with pytest.raises(CheckpointError,
                       match='model-zoo checkpoint names are not supported'):
        _load_checkpoint(name, map_location='cpu')


def test_local_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        _load_checkpoint(str(tmp_path / 'nope.pth'), map_location='cpu')
