"""Memory bank, smoothing, detector and MVTec-folder reading."""
import cv2
import numpy as np
import pytest
import torch

from dinov3_mm.registry import MODELS
from dinov3_mm_industrial.anomaly import (gaussian_blur, gaussian_kernel1d,
                                          greedy_coreset, load_category,
                                          nearest_neighbour_distance,
                                          read_mask, subsample_bank)
from dinov3_mm_industrial.anomaly.pipeline import run_anomaly_detection
from dinov3_mm_industrial.synthetic import write_mvtec_like


def test_chunked_nearest_neighbour_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(37, 5, generator=g)
    bank = torch.randn(23, 5, generator=g)
    brute = torch.cdist(queries, bank).min(dim=1).values
    for max_pairs in (1, 7, 23, 50, 10**6):  # blocks of every shape
        got = nearest_neighbour_distance(queries, bank, max_pairs)
        assert torch.allclose(got, brute, atol=1e-5), max_pairs
    # a query equal to a bank entry is at distance 0
    assert nearest_neighbour_distance(bank[3:4], bank).item() < 1e-3
    with pytest.raises(ValueError, match='memory bank is empty'):
        nearest_neighbour_distance(queries, torch.zeros(0, 5))
    with pytest.raises(ValueError, match='3 channels but the bank has 5'):
        nearest_neighbour_distance(torch.zeros(2, 3), bank)


def test_greedy_coreset_covers_every_cluster():
    # three clusters of very different sizes; random sampling of 3 points
    # would usually miss the single far point
    points = torch.tensor([[0.0], [0.1], [0.2], [0.3], [0.4], [0.5], [10.0],
                           [10.1], [50.0]])
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        picked = points[greedy_coreset(points, 3, proj_dim=None, generator=g)]
        clusters = {int(v // 10) for v in picked[:, 0].tolist()}
        assert clusters == {0, 1, 5}, (seed, picked)
    bank = subsample_bank(torch.randn(40, 16), 'greedy', ratio=0.25,
                          proj_dim=4)
    assert bank.shape == (10, 16)
    a = subsample_bank(torch.arange(40.).view(20, 2), 'random', 0.5, seed=1)
    b = subsample_bank(torch.arange(40.).view(20, 2), 'random', 0.5, seed=1)
    assert a.shape == (10, 2) and torch.equal(a, b)
    with pytest.raises(ValueError, match="Unknown subsampling method 'km"):
        subsample_bank(a, 'kmeans', 0.5)
    with pytest.raises(ValueError, match=r'ratio must be in \(0, 1\]'):
        subsample_bank(a, 'random', 0.0)


def test_gaussian_blur():
    kernel = gaussian_kernel1d(1.0)
    assert kernel.numel() == 9 and kernel.sum().item() == pytest.approx(1.0)
    assert kernel[4] / kernel[5] == pytest.approx(np.exp(0.5), rel=1e-5)
    impulse = torch.zeros(1, 21, 21)
    impulse[0, 10, 10] = 1.0
    out = gaussian_blur(impulse, 1.0)
    # separable: the response is the outer product of the 1-D kernel
    assert torch.allclose(out[0, 6:15, 6:15], torch.outer(kernel, kernel),
                          atol=1e-6)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)
    const = torch.full((2, 5, 7), 3.0)
    assert torch.allclose(gaussian_blur(const, 4.0), const)  # tiny map
    assert gaussian_blur(impulse, 0) is impulse


def _images(n, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g).byte()


def test_detector_shapes_and_self_distance(tiny_backbone):
    det = MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone,
                            pool_size=3, sigma=1.0))
    train = _images(3)
    stats = det.fit([train[:2], train[2:]])
    assert stats == dict(num_images=3, num_patches=3 * 16, bank_size=48)
    assert det.memory_bank.shape == (48, 64)
    out = det.predict(train[:1])
    assert out['maps'].shape == (1, 32, 32)
    assert out['patch_scores'].shape == (1, 4, 4)
    # every patch of a training image is in the bank: distance 0
    # (up to cdist's matrix-product rounding; other images score > 0.1)
    assert out['patch_scores'].abs().max().item() < 1e-2
    other = det.predict(_images(2, seed=1))
    assert other['scores'].shape == (2, )
    assert (other['scores'] > 0.1).all()
    assert other['scores'].tolist() == pytest.approx(
        other['maps'].flatten(1).max(1).values.tolist())
    # the bank survives a state-dict round trip into a fresh detector
    fresh = MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone,
                              pool_size=3, sigma=1.0))
    fresh.load_state_dict(det.state_dict())
    assert torch.allclose(fresh.predict(_images(2, seed=1))['scores'],
                          other['scores'])


def test_detector_topk_score_and_frozen_backbone(tiny_backbone):
    det = MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone,
                            score_mode='topk', topk_ratio=0.25, sigma=0))
    det.fit([_images(2)])
    det.train()
    assert not det.backbone.training
    assert not any(p.requires_grad for p in det.parameters())
    out = det.predict(_images(1, seed=2))
    top = out['maps'].flatten().topk(256).values.mean()
    assert out['scores'].item() == pytest.approx(top.item(), rel=1e-5)


def test_detector_errors(tiny_backbone):
    with pytest.raises(ValueError, match="out_type='featmap'"):
        MODELS.build(dict(type='DINOv3PatchCore',
                          backbone=dict(tiny_backbone, out_type='cls_token')))
    det = MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone))
    with pytest.raises(RuntimeError, match='call fit'):
        det.predict(_images(1))
    with pytest.raises(ValueError, match='Unknown subsample keys'):
        MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone,
                          subsample=dict(fraction=0.1)))
    with pytest.raises(ValueError, match='pool_size must be a positive odd'):
        MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone,
                          pool_size=2))


@pytest.fixture
def small_set(tmp_path):
    write_mvtec_like(str(tmp_path / 'set'), num_train=2, num_test_good=1,
                     num_test_defect=1, size=32)
    return tmp_path / 'set' / 'fabric'


def test_missing_training_images_named(small_set):
    for f in (small_set / 'train' / 'good').iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_category(str(small_set))
    assert str(small_set / 'train' / 'good') in str(info.value)
    assert 'No normal training images' in str(info.value)


def test_missing_mask_named(small_set, tiny_backbone):
    mask = small_set / 'ground_truth' / 'blob' / '000_mask.png'
    mask.unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_category(str(small_set))
    assert str(small_set / 'test' / 'blob' / '000.png') in str(info.value)
    assert str(mask) in str(info.value)
    # without pixel metrics the mask is not needed
    category = load_category(str(small_set), require_masks=False)
    masks = {t.label: t.mask_path for t in category.test}
    assert masks['blob'] is None and masks['good'] is None
    assert masks['scratch'].endswith('000_mask.png')
    det = MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone))
    res = run_anomaly_detection(det, str(small_set.parent), 32,
                                pixel_metrics=False)
    assert 'pixel_auroc' not in res['fabric']


def test_mask_size_mismatch_named(small_set, tiny_backbone):
    mask = small_set / 'ground_truth' / 'scratch' / '000_mask.png'
    cv2.imwrite(str(mask), np.zeros((16, 24), np.uint8))
    with pytest.raises(ValueError) as info:
        read_mask(str(mask), 'img.png', (32, 32))
    assert 'Mask size mismatch' in str(info.value)
    assert str(mask) in str(info.value) and '24x16' in str(info.value)
    det = MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone))
    with pytest.raises(ValueError, match='000_mask.png'):
        run_anomaly_detection(det, str(small_set.parent), 32)


def test_img_size_must_fit_patches(small_set, tiny_backbone):
    det = MODELS.build(dict(type='DINOv3PatchCore', backbone=tiny_backbone))
    with pytest.raises(ValueError, match='multiple of the backbone patch '
                       'size 8'):
        run_anomaly_detection(det, str(small_set), 36)
    with pytest.raises(FileNotFoundError, match=r"\['wood'\] not found"):
        run_anomaly_detection(det, str(small_set.parent), 32,
                              categories=['wood'])
