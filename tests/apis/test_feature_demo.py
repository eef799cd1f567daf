"""Feature extraction API, normalisation presets and the demo outputs."""
import json

import cv2
import numpy as np
import pytest
import torch

from dinov3_mm.apis.demo import run_feature_demo
from dinov3_mm.apis.features import extract_features, images_to_tensor
from dinov3_mm.datasets.synthetic import make_shape_images
from dinov3_mm.models.backbones import DINOv3ConvNeXt, DINOv3ViT
from dinov3_mm.models.backbones.weights import save_backbone
from dinov3_mm.models.normalization import get_normalization
from dinov3_mm.visualization.pca import pca_rgb

TINY = dict(embed_dims=64, num_layers=2, num_heads=2)


def test_normalization_presets():
    assert get_normalization('lvd1689m')['mean'] == [123.675, 116.28, 103.53]
    assert get_normalization('SAT-493M', scale=1)['std'] == [0.213, 0.156,
                                                             0.143]
    with pytest.raises(ValueError, match="Unknown normalization 'sat'"):
        get_normalization('sat')


def test_images_to_tensor_normalises():
    image = np.full((32, 32, 3), 255, dtype=np.uint8)
    x = images_to_tensor([image], 'lvd1689m')
    expected = (1 - 0.485) / 0.229
    assert x.shape == (1, 3, 32, 32)
    assert torch.allclose(x[0, 0], torch.full((32, 32), expected), atol=1e-5)
    with pytest.raises(ValueError, match='share one size'):
        images_to_tensor([image, image[:16]])


@pytest.mark.parametrize('model', [
    DINOv3ViT(arch=TINY),
    DINOv3ConvNeXt(arch=dict(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64]))
])
def test_extract_features_matches_forward_features(model):
    images = make_shape_images(2, 64)
    feats = extract_features(model, images)
    with torch.no_grad():
        ref = model.eval().forward_features(images_to_tensor(images))
    B, C, h, w = feats['patch'].shape
    assert torch.allclose(feats['cls'], ref['x_norm_clstoken'], atol=1e-6)
    assert torch.allclose(
        feats['patch'].flatten(2).transpose(1, 2), ref['x_norm_patchtokens'],
        atol=1e-6)


def test_pca_rgb_spans_full_range():
    maps = pca_rgb(torch.randn(2, 16, 4, 5))
    assert maps.shape == (2, 4, 5, 3) and maps.dtype == np.uint8
    assert maps.min() == 0 and maps.max() == 255


def test_demo_writes_images_features_and_summary(tmp_path):
    torch.manual_seed(0)
    source = DINOv3ViT(arch=TINY)
    save_backbone(source, str(tmp_path / 'w.pth'), 'official')
    summary = run_feature_demo(
        str(tmp_path / 'out'), arch=TINY, checkpoint=str(tmp_path / 'w.pth'),
        num_images=3, img_size=64, bf16=False)
    out = tmp_path / 'out'
    assert summary['patch_shape'] == [3, 64, 4, 4]
    assert json.loads((out / 'summary.json').read_text())['num_images'] == 3
    overview = cv2.imread(str(out / 'overview.png'))
    assert overview.shape == (128, 192, 3)
    assert sorted(p.name for p in (out / 'pca').iterdir()) == [
        '00.png', '01.png', '02.png']
    feats = torch.load(out / 'features.pt', weights_only=True)
    direct = extract_features(source, make_shape_images(3, 64))
    assert torch.allclose(feats['cls'], direct['cls'], atol=1e-6)
