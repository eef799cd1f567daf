"""PCA feature pictures: API pieces and tools/analysis/pca_features.py."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import dinov3_mm  # noqa: F401
from dinov3_mm.apis.inference import init_model
from dinov3_mm.apis.pca_features import (backbone_from_config,
                                         build_bare_backbone, input_size,
                                         joint_pca_rgb, patch_features,
                                         run_pca_features)
from dinov3_mm.models.backbones import DINOv3ViT
from dinov3_mm.models.backbones.weights import save_backbone
from dinov3_mm.models.normalization import get_normalization
from dinov3_mm.visualization.pca import pca_rgb

TINY = dict(embed_dims=48, num_layers=2, num_heads=3)
SEG_CONFIG = 'configs/segmentation/vit_unet_seg_shapes.py'


def _images(folder, sizes=((32, 32), (32, 48), (40, 24))):
    rng = np.random.default_rng(0)
    (folder / 'sub').mkdir(parents=True)
    paths = []
    for i, (h, w) in enumerate(sizes):
        path = folder / ('sub' if i == 0 else '') / f'im{i}.png'
        cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), np.uint8))
        paths.append(path)
    return paths


def test_input_size_and_joint_pca():
    assert input_size(32, 48, 64, 16) == (48, 64)
    assert input_size(40, 24, 64, 16) == (64, 32)
    assert input_size(10, 1000, 64, 16) == (16, 64)
    feats = torch.randn(2, 8, 3, 4)
    joint = joint_pca_rgb([feats[0], feats[1]])
    assert np.array_equal(np.stack(joint), pca_rgb(feats))
    maps = joint_pca_rgb([torch.randn(8, 2, 3), torch.randn(8, 4, 1)])
    assert [m.shape for m in maps] == [(2, 3, 3), (4, 1, 3)]


def test_bare_backbone_weights_and_arch_detection(tmp_path):
    torch.manual_seed(0)
    source = DINOv3ViT(arch=TINY)
    save_backbone(source, str(tmp_path / 'w.pth'), 'official')
    for model in (build_bare_backbone('DINOv3ViT', TINY,
                                      str(tmp_path / 'w.pth')),
                  build_bare_backbone(None, None, str(tmp_path / 'w.pth'))):
        assert isinstance(model, DINOv3ViT)
        for key, value in source.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key
    convnext = build_bare_backbone(
        'DINOv3ConvNeXt', dict(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64]))
    image = np.zeros((64, 96, 3), np.uint8)
    assert patch_features(convnext, image).shape == (64, 2, 3)


def test_backbone_from_config_loads_checkpoint(repo_root, tmp_path):
    cfg = Config.fromfile(str(repo_root / SEG_CONFIG))
    cfg.model.backbone.arch = TINY
    cfg.model.neck.in_channels = 48
    torch.manual_seed(1)
    model = init_model(cfg)
    torch.save({'state_dict': model.state_dict(), 'meta': {}},
               str(tmp_path / 'ckpt.pth'))
    torch.manual_seed(2)  # a different random init, replaced by the ckpt
    backbone, norm = backbone_from_config(cfg, str(tmp_path / 'ckpt.pth'))
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(backbone.state_dict()[key], value), key
    expected = get_normalization('lvd1689m')
    assert np.allclose(norm['mean'], expected['mean'])
    assert np.allclose(norm['std'], expected['std'])


def test_run_pca_features_api(tmp_path):
    paths = _images(tmp_path / 'images')
    torch.manual_seed(0)
    written = run_pca_features(str(tmp_path / 'images'), str(tmp_path / 'o'),
                               arch=TINY, img_size=64, bf16=False)
    assert sorted(written) == sorted([
        str(tmp_path / 'o' / 'sub' / 'im0.png'),
        str(tmp_path / 'o' / 'im1.png'),
        str(tmp_path / 'o' / 'im2.png')])
    with pytest.raises(ValueError, match='not both'):
        run_pca_features(str(paths[0]), str(tmp_path / 'x'),
                         config=SEG_CONFIG, arch='small')


def test_pca_features_tool_bare_arch(run_tool, tmp_path):
    _images(tmp_path / 'images')
    torch.manual_seed(0)
    save_backbone(DINOv3ViT(arch=TINY), str(tmp_path / 'w.pth'), 'official')
    proc = run_tool('analysis/pca_features.py', tmp_path / 'images', '--out',
                    tmp_path / 'out', '--arch',
                    '{"embed_dims": 48, "num_layers": 2, "num_heads": 3}',
                    '--weights', tmp_path / 'w.pth', '--img-size', '64',
                    '--fp32')
    assert 'Wrote 3 PCA pictures' in proc.stdout
    expected = {'sub/im0.png': (64, 128), 'im1.png': (48, 128),
                'im2.png': (64, 64)}
    found = sorted(str(p.relative_to(tmp_path / 'out'))
                   for p in (tmp_path / 'out').rglob('*.png'))
    assert found == sorted(expected)
    for name, (h, w) in expected.items():
        picture = cv2.imread(str(tmp_path / 'out' / name))
        assert picture.shape == (h, w, 3)
        # the left half is the resized image, the right one the PCA map
        # (constant over each 16 px patch)
        pca = picture[:, w // 2:]
        assert np.array_equal(pca[::16, ::16].repeat(16, 0).repeat(16, 1),
                              pca)


def test_pca_features_tool_config(run_tool, repo_root, tmp_path):
    _images(tmp_path / 'images')
    run_tool('analysis/pca_features.py', tmp_path / 'images', '--out',
             tmp_path / 'out', '--config', repo_root / SEG_CONFIG,
             '--cfg-options', 'model.backbone.arch.num_layers=2',
             '--img-size', '32', '--fp32')
    pictures = sorted((tmp_path / 'out').rglob('*.png'))
    assert len(pictures) == 3
    shapes = {p.name: cv2.imread(str(p)).shape for p in pictures}
    assert shapes == {'im0.png': (32, 64, 3), 'im1.png': (16, 64, 3),
                      'im2.png': (32, 32, 3)}
