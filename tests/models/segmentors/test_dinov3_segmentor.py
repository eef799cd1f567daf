"""DINOv3Segmentor: loss, whole/slide/flip inference, padding and resizing."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import nn

from dinov3_mm.registry import MODELS


@MODELS.register_module(force=True)
class ProbeSegHead(nn.Module):
    """1x1 conv on the last feature map."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, feats):
        return self.conv(feats[-1])


@MODELS.register_module(force=True)
class ProbeSegLoss(nn.Module):

    def forward(self, logits, target):
        if logits.shape[1] == 1:
            valid = target != 255
            return F.binary_cross_entropy_with_logits(
                logits[:, 0][valid], target[valid].float())
        return F.cross_entropy(logits, target, ignore_index=255)


def build(num_classes=3, **kwargs):
    return MODELS.build(dict(
        type='DINOv3Segmentor',
        backbone=dict(type='DINOv3ViT',
                      arch=dict(embed_dims=32, num_layers=2, num_heads=2),
                      out_type='featmap', out_indices=(-1, )),
        decode_head=dict(type='ProbeSegHead', in_channels=32,
                         num_classes=num_classes),
        loss_decode=dict(type='ProbeSegLoss'), **kwargs))


def sample(h, w, num_classes=3, **meta):
    s = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w),
                                    **meta))
    s.gt_sem_seg = PixelData(
        data=torch.randint(0, num_classes, (1, h, w)))
    return s


def test_loss_with_padded_batch_and_aux_head():
    model = build(auxiliary_head=dict(type='ProbeSegHead', in_channels=32,
                                      num_classes=3))
    data = dict(inputs=[torch.randint(0, 255, (3, 40, 48), dtype=torch.uint8),
                        torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8)],
                data_samples=[sample(40, 48), sample(32, 32)])
    data = model.data_preprocessor(data, training=True)
    assert data['inputs'].shape == (2, 3, 48, 48)
    padded = data['data_samples'][1].gt_sem_seg.data
    assert padded.shape == (1, 48, 48) and (padded[:, 32:] == 255).all()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_seg', 'loss_aux'}
    sum(losses.values()).backward()
    assert model.decode_head.conv.weight.grad is not None
    assert model.backbone.blocks[0].attn.qkv.weight.grad is not None


def test_predict_crops_padding_and_resizes_to_original():
    model = build().eval()
    s = sample(20, 30, pad_border=(6, 6, 1, 1))
    s.set_metainfo(dict(ori_shape=(40, 60)))
    preds = model.predict(torch.randn(1, 3, 32, 32), [s])
    assert preds[0].pred_sem_seg.data.shape == (1, 40, 60)
    assert preds[0].seg_logits.data.shape == (3, 40, 60)


@pytest.mark.parametrize('flip', [False, True])
def test_slide_inference_matches_whole_when_one_crop_covers(flip):
    whole = build(test_cfg=dict(mode='whole', flip=flip)).eval()
    slide = build(test_cfg=dict(mode='slide', crop_size=(32, 32),
                                stride=(32, 32), flip=flip)).eval()
    slide.load_state_dict(whole.state_dict())
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(whole.inference(x), slide.inference(x), atol=1e-5)


def test_slide_inference_averages_overlaps():
    model = build(test_cfg=dict(mode='slide', crop_size=(32, 32),
                                stride=(16, 16))).eval()
    x = torch.randn(1, 3, 48, 64)
    calls = []
    model.backbone.register_forward_pre_hook(
        lambda m, args: calls.append(tuple(args[0].shape[-2:])))
    logits = model.inference(x)
    assert logits.shape == (1, 3, 48, 64)
    assert len(calls) == 2 * 3 and set(calls) == {(32, 32)}


def test_binary_segmentation_thresholds_sigmoid():
    model = build(num_classes=1).eval()
    preds = model.predict(torch.randn(2, 3, 32, 32),
                          [sample(32, 32, 2), sample(32, 32, 2)])
    labels = preds[0].pred_sem_seg.data
    assert labels.shape == (1, 32, 32) and set(labels.unique().tolist()) <= {
        0, 1}
    probs = preds[0].seg_logits.data.sigmoid()
    assert torch.equal(labels, (probs > 0.5).long())


def test_bad_test_mode():
    with pytest.raises(ValueError, match="'whole' or 'slide'"):
        build(test_cfg=dict(mode='tiles'))
