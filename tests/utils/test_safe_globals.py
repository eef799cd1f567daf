"""The weights-only allow-list: what it admits and what it refuses."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version

from dinov3_mm.utils.safe_globals import (mmengine_safe_globals,
                                          register_safe_globals)

TORCH_DEFAULTS_TO_WEIGHTS_ONLY = (
    digit_version(torch.__version__) >= digit_version('2.6.0'))


@pytest.fixture(autouse=True)
def _registered():
    register_safe_globals()


class _Reduce:
    """Pickles as ``fn(*args)``, like a hostile checkpoint would."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.skipif(
    not TORCH_DEFAULTS_TO_WEIGHTS_ONLY,
    reason='the getattr stand-in needs torch >= 2.6 named safe globals')
@pytest.mark.parametrize('target,attr', [
    (HistoryBuffer, 'update'),
    (HistoryBuffer, '__init__'),
    (np.ndarray, 'tofile'),
    (ConfigDict, '__class__'),
])
def test_getattr_stand_in_refuses_other_attributes(tmp_path, target, attr):
    path = tmp_path / 'hostile.pth'
    torch.save({'x': _Reduce(getattr, (target, attr))}, path)
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        torch.load(path, weights_only=True)


@pytest.mark.skipif(
    not TORCH_DEFAULTS_TO_WEIGHTS_ONLY,
    reason='the getattr stand-in needs torch >= 2.6 named safe globals')
def test_getattr_stand_in_allows_statistics_methods(tmp_path):
    path = tmp_path / 'stats.pth'
    torch.save({'mean': _Reduce(getattr, (HistoryBuffer, 'mean'))}, path)
    assert torch.load(path, weights_only=True)['mean'] is HistoryBuffer.mean


def test_register_safe_globals_is_idempotent_and_narrow():
    register_safe_globals()
    before = list(torch.serialization.get_safe_globals())
    register_safe_globals()
    assert list(torch.serialization.get_safe_globals()) == before
    for item in mmengine_safe_globals():
        assert item in before
    objects = [g[0] if isinstance(g, tuple) else g for g in before]
    assert getattr not in objects, 'the real getattr must never be allowed'
    assert eval not in objects and exec not in objects
