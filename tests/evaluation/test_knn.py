"""Class-token feature extraction for k-NN evaluation."""
import pytest
import torch
from mmengine.runner import Runner
from torch import nn

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.evaluation.knn import extract_cls_features
from dinov3_mm.models.backbones.dinov3_convnext import DINOv3ConvNeXt
from dinov3_mm.models.backbones.dinov3_vit import DINOv3ViT
from dinov3_mm.models.data_preprocessors import ClsDataPreprocessor
from dinov3_mm.structures import DataSample


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
