"""Weighted k-NN classification and class-token feature extraction."""
import math

import pytest
import torch
from mmengine.runner import Runner
from torch import nn

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.evaluation.knn import (extract_cls_features, knn_accuracy,
                                      knn_classify)
from dinov3_mm.models.backbones.dinov3_convnext import DINOv3ConvNeXt
from dinov3_mm.models.backbones.dinov3_vit import DINOv3ViT
from dinov3_mm.models.data_preprocessors import ClsDataPreprocessor
from dinov3_mm.structures import DataSample


def _clusters(n_per_class=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.arange(2).repeat_interleave(n_per_class)
    noise = torch.randn(len(labels), 3, generator=gen)
    feats = centres[labels] + 0.1 * noise
    return feats, labels


def test_two_clusters_are_separated():
    train, train_labels = _clusters(seed=0)
    test, test_labels = _clusters(n_per_class=5, seed=1)
    scores = knn_classify(train, train_labels, test, num_classes=2, k=5)
    assert scores.shape == (10, 2) and scores.dtype == torch.float32
    assert torch.equal(scores.argmax(1), test_labels)
    assert knn_accuracy(train, train_labels, test, test_labels,
                        num_classes=2, k=5) == {'top1': 100.0}
    wrong = 1 - test_labels
    assert knn_accuracy(train, train_labels, test, wrong, 2,
                        k=5)['top1'] == 0.0


def test_weighted_vote_formula_on_three_points():
    # unit vectors; the query's cosine similarities are 0.8, 0.96 and 0.6
    train = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[0.8, 0.6]])
    t = 0.5
    scores = knn_classify(train, labels, query, num_classes=3, k=3,
                          temperature=t)
    expected = torch.tensor([[math.exp(0.8 / t),
                              math.exp(0.96 / t) + math.exp(0.6 / t), 0.0]])
    torch.testing.assert_close(scores, expected)
    # k=2 drops the farthest point (class 1, similarity 0.6)
    scores = knn_classify(train, labels, query, 3, k=2, temperature=t)
    torch.testing.assert_close(
        scores, torch.tensor([[math.exp(0.8 / t), math.exp(0.96 / t), 0.0]]))
    # features are normalised inside: scaling changes nothing
    scaled = knn_classify(train * torch.tensor([[3.0], [0.2], [7.0]]),
                          labels, query * 10, 3, k=2, temperature=t)
    torch.testing.assert_close(scaled, scores)
    # the default temperature (0.07) sharpens the vote towards the nearest
    default = knn_classify(train, labels, query, 3, k=3)
    torch.testing.assert_close(
        default[0, 1], torch.tensor(math.exp(0.96 / 0.07) +
                                    math.exp(0.6 / 0.07)))


def test_k_larger_than_train_set_uses_every_point():
    train, labels = _clusters(n_per_class=3)
    test, _ = _clusters(n_per_class=4, seed=2)
    capped = knn_classify(train, labels, test, 2, k=100)
    torch.testing.assert_close(capped, knn_classify(train, labels, test, 2,
                                                    k=len(train)))


def test_chunking_gives_identical_results():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(50, 16, generator=gen)
    labels = torch.randint(0, 7, (50, ), generator=gen)
    test = torch.randn(37, 16, generator=gen)
    whole = knn_classify(train, labels, test, 7, k=9, chunk_size=256)
    for chunk in (1, 5, 36, 37):
        part = knn_classify(train, labels, test, 7, k=9, chunk_size=chunk)
        # same neighbours; sums differ only by float rounding of the matmul
        torch.testing.assert_close(part, whole, rtol=1e-5, atol=0)
        assert torch.equal(part.argmax(1), whole.argmax(1))


def test_top5_only_with_five_classes():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(60, 8, generator=gen)
    labels = torch.arange(60) % 6
    test = torch.randn(20, 8, generator=gen)
    test_labels = torch.arange(20) % 6
    result = knn_accuracy(train, labels, test, test_labels, 6, k=10)
    assert set(result) == {'top1', 'top5'}
    assert 0 <= result['top1'] <= result['top5'] <= 100
    assert set(knn_accuracy(train, labels % 3, test, test_labels % 3,
                            3)) == {'top1'}
    # top-5 hit: fewer than 5 classes score higher and the class got a vote
    scores = knn_classify(train, labels, test, 6, k=10)
    own = scores.gather(1, test_labels[:, None])
    hit = ((scores > own).sum(1) < 5) & (own[:, 0] > 0)
    assert result['top5'] == pytest.approx(hit.float().mean().item() * 100)
    assert (scores == 0).any()  # the case where tie order would matter


def test_input_errors():
    train, labels = _clusters(n_per_class=2)
    with pytest.raises(ValueError, match='outside'):
        knn_classify(train, labels + 1, train, num_classes=2)
    with pytest.raises(ValueError, match='channels'):
        knn_classify(train, labels, train[:, :2], num_classes=2)
    with pytest.raises(ValueError, match='1-D'):
        knn_classify(train, labels[:3], train, num_classes=2)
    with pytest.raises(ValueError, match='integer'):
        knn_classify(train, labels.float(), train, num_classes=2)
    with pytest.raises(ValueError, match='k must'):
        knn_classify(train, labels, train, 2, k=0)
    with pytest.raises(ValueError, match='at least one training'):
        knn_classify(train[:0], labels[:0], train, 2)


# ------------------------------------------------------- feature extraction
@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('knn_shapes')
    return write_shape_dataset(str(root), num_per_class=3, size=32,
                               splits=('train', ))


def _loader(root, batch_size=4):
    pipeline = [dict(type='LoadImage'), dict(type='PackClsInputs')]
    return Runner.build_dataloader(dict(
        batch_size=batch_size, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='dinov3_mm.ImageFolderDataset', data_root=root,
                     split='train', pipeline=pipeline)))


def test_extract_cls_features_of_tiny_vit(shapes):
    torch.manual_seed(0)
    vit = DINOv3ViT(arch=dict(embed_dims=48, num_layers=2, num_heads=3))
    vit.train()
    vit.blocks[0].eval()  # per-module modes are restored, not just the top
    loader = _loader(shapes)
    feats, labels = extract_cls_features(vit, loader, ClsDataPreprocessor())
    assert feats.shape == (9, 48) and feats.dtype == torch.float32
    assert labels.dtype == torch.int64
    expected = torch.tensor(loader.dataset.get_gt_labels())
    assert torch.equal(labels, expected) and set(labels.tolist()) == {0, 1, 2}
    assert vit.training and not vit.blocks[0].training
    assert vit.blocks[1].training
    # the same features as forward_features on the normalised batch
    batch = ClsDataPreprocessor()(next(iter(loader)))
    vit.eval()
    with torch.no_grad():
        ref = vit.forward_features(batch['inputs'])['x_norm_clstoken']
    torch.testing.assert_close(feats[:4], ref)
    # bf16 autocast on the CPU: close to float32, still float32 out
    bf16, labels16 = extract_cls_features(vit, loader, None,
                                          autocast_dtype='bfloat16')
    assert bf16.dtype == torch.float32 and torch.equal(labels16, labels)
    cos = nn.functional.cosine_similarity(bf16, feats, dim=1)
    assert cos.min() > 0.95


def test_extract_cls_features_convnext_and_pooled_fallback(shapes):
    loader = _loader(shapes, batch_size=5)
    convnext = DINOv3ConvNeXt(
        arch=dict(depths=[1, 1, 1, 1], dims=[8, 8, 8, 16]))
    feats, labels = extract_cls_features(convnext, loader,
                                         ClsDataPreprocessor())
    assert feats.shape == (9, 16) and len(labels) == 9

    class MapBackbone(nn.Module):  # no forward_features: pooled feature map
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3)

        def forward(self, x):
            return (self.conv(x), )

    feats, _ = extract_cls_features(MapBackbone(), loader,
                                    ClsDataPreprocessor())
    assert feats.shape == (9, 6)


def test_extract_without_labels_fails():
    batches = [dict(inputs=[torch.zeros(3, 16, 16, dtype=torch.uint8)],
                    data_samples=[DataSample()])]
    vit = DINOv3ViT(arch=dict(embed_dims=48, num_layers=1, num_heads=3))
    with pytest.raises(ValueError, match='no gt_label'):
        extract_cls_features(vit, batches, ClsDataPreprocessor())
    assert vit.training  # mode restored after the error
