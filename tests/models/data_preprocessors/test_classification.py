"""ClsDataPreprocessor: normalisation presets, padding, mixup and cutmix."""
import pytest
import torch

from dinov3_mm.models.data_preprocessors.classification import CutMix, Mixup
from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample


def build(**kwargs):
    return MODELS.build(dict(type='ClsDataPreprocessor', **kwargs))


@pytest.mark.parametrize('name,mean,std', [
    ('lvd1689m', (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ('sat493m', (0.430, 0.411, 0.296), (0.213, 0.156, 0.143)),
])
def test_normalization_by_name(name, mean, std):
    pre = build(normalization=name)
    torch.testing.assert_close(pre.mean.flatten(),
                               torch.tensor(mean) * 255)
    torch.testing.assert_close(pre.std.flatten(), torch.tensor(std) * 255)
    image = torch.full((3, 16, 16), 128, dtype=torch.uint8)
    out = pre(dict(inputs=[image], data_samples=None))['inputs']
    expected = (128 - torch.tensor(mean) * 255) / (torch.tensor(std) * 255)
    torch.testing.assert_close(out[0, :, 0, 0], expected)


def test_explicit_mean_std_and_errors():
    pre = build(mean=[10, 20, 30], std=[2, 2, 2])
    out = pre(dict(inputs=[torch.full((3, 16, 16), 40, dtype=torch.uint8)]))
    assert out['inputs'][0, :, 0, 0].tolist() == [15, 10, 5]
    with pytest.raises(ValueError, match='both mean and std'):
        build(mean=[1, 2, 3])
    with pytest.raises(ValueError, match='Unknown normalization'):
        build(normalization='nope')
    with pytest.raises(ValueError, match='num_classes'):
        build(batch_augments=dict(augments=[dict(type='Mixup')]))


def test_pads_variable_sizes_to_divisor():
    pre = build()
    images = [torch.randint(0, 256, (3, 20, 33), dtype=torch.uint8),
              torch.randint(0, 256, (3, 35, 16), dtype=torch.uint8)]
    out = pre(dict(inputs=images, data_samples=None))['inputs']
    assert out.shape == (2, 3, 48, 48)
    assert out.dtype == torch.float32
    assert (out[0, :, 20:] == 0).all() and (out[1, :, :, 16:] == 0).all()


def test_to_rgb_swaps_channels():
    pre = build(mean=[0, 0, 0], std=[1, 1, 1], to_rgb=True)
    image = torch.stack([torch.full((16, 16), v, dtype=torch.uint8)
                         for v in (1, 2, 3)])
    out = pre(dict(inputs=[image]))['inputs']
    assert out[0, :, 0, 0].tolist() == [3, 2, 1]


@pytest.mark.parametrize('augment', [Mixup(alpha=0.8), CutMix(alpha=1.0)],
                         ids=['mixup', 'cutmix'])
def test_batch_augment_soft_targets(augment):
    torch.manual_seed(3)
    inputs = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 16, 16).clone()
    scores = torch.eye(4)
    mixed, soft = augment(inputs, scores)
    torch.testing.assert_close(soft.sum(1), torch.ones(4))
    assert not torch.equal(mixed, inputs)
    values = torch.arange(4.0)
    for i in range(4):
        if isinstance(augment, CutMix):
            share = torch.stack([(mixed[i] == v).float().mean()
                                 for v in values])
            torch.testing.assert_close(share, soft[i])
        else:
            expected = (soft[i] * values).sum()
            torch.testing.assert_close(mixed[i], torch.full_like(
                mixed[i], expected.item()))


def test_training_sets_gt_score_only_when_training():
    torch.manual_seed(0)
    pre = build(num_classes=5, batch_augments=dict(
        augments=[dict(type='Mixup', alpha=0.8),
                  dict(type='CutMix', alpha=1.0)], probs=[0.5, 0.5]))

    def data():
        return dict(
            inputs=[torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
                    for _ in range(4)],
            data_samples=[DataSample().set_gt_label(i) for i in range(4)])
    out = pre(data(), training=False)
    assert all('gt_score' not in s for s in out['data_samples'])
    out = pre(data(), training=True)
    scores = torch.stack([s.gt_score for s in out['data_samples']])
    assert scores.shape == (4, 5)
    torch.testing.assert_close(scores.sum(1), torch.ones(4))
    assert (scores[:, 4] == 0).all()
    assert (scores.max(1).values < 1).any()


def test_probs_validation_and_no_augment_share():
    with pytest.raises(ValueError, match='probs'):
        build(num_classes=2, batch_augments=dict(
            augments=[dict(type='Mixup')], probs=[0.7, 0.3]))
    pre = build(num_classes=2, batch_augments=dict(
        augments=[dict(type='Mixup')], probs=[0.0]))
    samples = [DataSample().set_gt_label(i) for i in (0, 1)]
    images = [torch.zeros(3, 16, 16, dtype=torch.uint8),
              torch.full((3, 16, 16), 255, dtype=torch.uint8)]
    out = pre(dict(inputs=images, data_samples=samples), training=True)
    assert [s.gt_score.tolist() for s in out['data_samples']] == [[1, 0],
                                                                  [0, 1]]
