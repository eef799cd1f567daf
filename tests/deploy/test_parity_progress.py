"""Deployment parity shows bars over its images on request."""
import pytest

from dinov3_mm.deploy import preprocess_images
from dinov3_mm.deploy.parity_inputs import served_preprocessing_diff
from dinov3_mm.deploy.serving_spec import serving_spec
from dinov3_mm.utils.progress import PROGRESS_ENV


@pytest.mark.parametrize('forced', [True, False])
def test_parity_image_bars(monkeypatch, capsys, shape_images,
                           tiny_classifier, shrunk_test_config, forced):
    if forced:
        monkeypatch.setenv(PROGRESS_ENV, '1')
    else:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    model = tiny_classifier()
    model.cfg = shrunk_test_config(
        'configs/classification/vits16_linear_probe_shapes.py', 32)
    inputs = preprocess_images(model, shape_images)
    spec = serving_spec(model, 'classification')
    assert served_preprocessing_diff(shape_images, spec, inputs) < 1e-4
    err = capsys.readouterr().err
    if forced:
        assert 'Parity: test pipeline' in err and '/3' in err
        assert 'Parity: served preprocessing' in err
    else:
        assert 'Parity' not in err
