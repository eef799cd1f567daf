"""The cached linear probe shows a bar while it extracts features."""
import pytest
import torch
from torch import nn

from dinov3_mm.engine.runner.cached_feature_loops import \
    extract_dataloader_features
from dinov3_mm.utils.progress import PROGRESS_ENV


class _Probe(nn.Module):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def data_preprocessor(self, data, training=False):
        return data

    def extract_feat(self, inputs):
        return self.linear(inputs)


def _batches():
    return [dict(inputs=torch.randn(2, 4), data_samples=[i, i + 1])
            for i in range(0, 6, 2)]


@pytest.mark.parametrize('forced', [True, False])
def test_feature_cache_bar(monkeypatch, capsys, forced):
    if forced:
        monkeypatch.setenv(PROGRESS_ENV, '1')
    else:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    (feats, ), samples = extract_dataloader_features(
        _Probe(), _batches(), progress='Caching train features (view 1/1)')
    assert feats.shape == (6, 3) and samples == [0, 1, 2, 3, 4, 5]
    err = capsys.readouterr().err
    if forced:
        assert 'Caching train features (view 1/1)' in err and '/3' in err
    else:
        assert err == ''
