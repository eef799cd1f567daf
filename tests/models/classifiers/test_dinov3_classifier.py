"""DINOv3Classifier: the three modes, training on a toy problem, multi-label."""
import pytest
import torch

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample

TINY_VIT = dict(
    type='DINOv3ViT',
    arch=dict(embed_dims=64, num_layers=2, num_heads=2),
    out_type='cls_patch_avg')
TINY_CONVNEXT = dict(type='DINOv3ConvNeXt',
                     arch=dict(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32]),
                     out_type='cls_token')


def build(backbone=TINY_VIT, in_channels=128, num_classes=3, **head):
    return MODELS.build(dict(
        type='DINOv3Classifier', backbone=backbone,
        head=dict(type='LinearClsHead', num_classes=num_classes,
                  in_channels=in_channels, **head)))


def batch(labels, size=32):
    return dict(
        inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
                for _ in labels],
        data_samples=[DataSample().set_gt_label(label) for label in labels])


@pytest.mark.parametrize('backbone,in_channels',
                         [(TINY_VIT, 128), (TINY_CONVNEXT, 32)],
                         ids=['vit', 'convnext'])
def test_three_modes(backbone, in_channels):
    torch.manual_seed(0)
    model = build(backbone, in_channels)
    data = model.data_preprocessor(batch([0, 2]), training=False)
    logits = model(data['inputs'], mode='tensor')
    assert logits.shape == (2, 3)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss', 'accuracy'} and losses['loss'].ndim == 0
    preds = model(**data, mode='predict')
    assert len(preds) == 2
    for pred, logit, gt in zip(preds, logits, (0, 2)):
        torch.testing.assert_close(pred.pred_score, logit.softmax(0))
        assert pred.pred_label.item() == logit.argmax().item()
        assert pred.gt_label.item() == gt
    with pytest.raises(ValueError, match='Invalid mode'):
        model(data['inputs'], mode='bogus')


def test_extract_feat_is_head_input_and_probe_width():
    backbone = dict(TINY_VIT, out_indices=(-2, -1))
    model = build(backbone, in_channels=256)
    feats = model.extract_feat(torch.randn(1, 3, 32, 32))
    assert [f.shape for f in feats] == [(1, 128), (1, 128)]
    with pytest.raises(ValueError, match='in_channels=128'):
        build(backbone, in_channels=128)(torch.randn(1, 3, 32, 32))


def test_frozen_backbone_runs_without_autograd():
    model = build(dict(TINY_VIT, frozen_stages=2))
    feats = model.extract_feat(torch.randn(2, 3, 32, 32))
    assert not feats[0].requires_grad
    loss = model(**model.data_preprocessor(batch([0, 1])), mode='loss')['loss']
    loss.backward()
    assert model.head.fc.weight.grad is not None


def test_loss_decreases_on_toy_problem():
    torch.manual_seed(0)
    model = build(num_classes=2)
    dark = [torch.full((3, 32, 32), 30, dtype=torch.uint8)] * 4
    bright = [torch.full((3, 32, 32), 220, dtype=torch.uint8)] * 4
    data = dict(inputs=dark + bright,
                data_samples=[DataSample().set_gt_label(i // 4)
                              for i in range(8)])
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(20):
        processed = model.data_preprocessor(
            dict(inputs=data['inputs'],
                 data_samples=[s.clone() for s in data['data_samples']]),
            training=True)
        loss = model(**processed, mode='loss')['loss']
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_multi_label_prediction_and_bce():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DINOv3Classifier', backbone=TINY_VIT,
        head=dict(type='MultiLabelLinearClsHead', num_classes=4,
                  in_channels=128, thr=0.5)))
    data = model.data_preprocessor(batch([[0, 3], [1]]))
    logits = model(data['inputs'])
    target = torch.tensor([[1., 0, 0, 1], [0, 1, 0, 0]])
    loss = model(**data, mode='loss')['loss']
    torch.testing.assert_close(
        loss, torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target))
    preds = model(**data, mode='predict')
    for pred, logit in zip(preds, logits):
        torch.testing.assert_close(pred.pred_score, logit.sigmoid())
        assert pred.pred_label.tolist() == torch.nonzero(
            logit.sigmoid() >= 0.5)[:, 0].tolist()
