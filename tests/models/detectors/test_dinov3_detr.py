import pytest
import torch
from mmengine.structures import InstanceData

import dinov3_mm.models  # noqa: F401
from dinov3_mm.models.detectors.box_ops import cxcywh_to_xyxy
from dinov3_mm.models.detectors.mask_head import masks_to_original
from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DetDataSample

TINY_VIT = dict(type='DINOv3ViT',
                arch=dict(embed_dims=64, num_layers=2, num_heads=2),
                out_type='featmap', out_indices=(1, ))


def tiny_detr(with_mask=False, **kwargs):
    cfg = dict(type='DINOv3DETR', num_classes=3, with_mask=with_mask,
               backbone=TINY_VIT,
               neck=dict(type='SimpleFPN', in_channels=64, out_channels=64),
               in_channels=64, embed_dims=64, num_queries=8, num_groups=2,
               decoder=dict(num_layers=2, ffn_dims=128, num_heads=4,
                            cross_heads=4))
    if not with_mask:
        # no stride-4 level without masks
        cfg['neck']['scales'] = (2, 1, 0.5)
        cfg['in_levels'] = (0, 1, 2)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def sample(h=96, w=96, with_mask=True, ori=(48, 48), scale=(2., 2.)):
    s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=ori,
                                    scale_factor=scale, border=(0, 0)))
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, 10:30, 10:40] = True
    masks[1, 50:90, 20:60] = True
    gt = InstanceData(bboxes=torch.tensor([[10., 10, 40, 30],
                                           [20, 50, 60, 90]]),
                      labels=torch.tensor([0, 2]))
    if with_mask:
        gt.masks = masks
    s.gt_instances = gt
    return s


@pytest.mark.parametrize('with_mask', [False, True])
def test_loss_keys_finite_and_every_trainable_part_gets_gradient(with_mask):
    torch.manual_seed(0)
    model = tiny_detr(with_mask)
    model.train()
    losses = model(torch.randn(2, 3, 96, 96),
                   [sample(), sample(w=80)], mode='loss')
    expected = {'loss_cls', 'loss_bbox', 'loss_giou', 'd0.loss_cls',
                'enc.loss_cls', 'enc.loss_giou'}
    if with_mask:
        expected |= {'loss_mask', 'loss_dice'}
    assert expected <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert no_grad == []


def test_training_uses_all_groups_inference_one():
    model = tiny_detr()
    model.train()
    out = model.forward_heads(torch.randn(1, 3, 64, 64))
    assert out['logits'][-1].shape == (1, 16, 3)
    mask = model.group_mask(2, 'cpu')
    assert mask[0, 7].item() is False and mask[0, 8].item() is True
    model.eval()
    logits, boxes = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 8, 3) and boxes.shape == (1, 8, 4)


def test_padding_positions_are_never_proposed():
    model = tiny_detr()
    model.eval()
    s = sample(h=32, w=96)
    out = model.forward_heads(torch.randn(1, 3, 96, 96), [s])
    # references are the selected proposals: all centres within the image
    # rows (a cell overlapping the image may stick out by less than a cell)
    centres_y = out['enc_boxes'][0, :, 1] * 96
    assert centres_y.max() < 32 + 16


def test_predict_maps_boxes_and_masks_to_original_image():
    model = tiny_detr(with_mask=True)
    model.eval()

    def fake_heads(inputs, data_samples=None):
        logits = torch.full((1, 8, 3), -5.0)
        logits[0, 3, 1] = 5.0
        boxes = torch.full((1, 8, 4), 0.5)
        # object at x 16..48, y 32..64 of the 64x64 canvas
        boxes[0, 3] = torch.tensor([0.5, 0.75, 0.5, 0.5])
        queries = torch.zeros(1, 8, 64)
        return dict(logits=[logits], boxes=[boxes], queries=queries,
                    pixels=torch.zeros(1, 64, 16, 16))

    model.forward_heads = fake_heads
    model.mask_head.logits = lambda q, p: torch.where(
        torch.zeros(len(q), 16, 16).index_fill_(1, torch.arange(8, 16), 1)
        .bool(), 5.0, -5.0)
    # original 60x40 (h, w) letterboxed: scale 0.8 -> 48x32, border left 16
    s = DetDataSample(metainfo=dict(ori_shape=(60, 40), img_shape=(64, 64),
                                    scale_factor=(0.8, 0.8),
                                    border=(16, 8)))
    pred = model.predict(torch.zeros(1, 3, 64, 64), [s])[0].pred_instances
    assert pred.labels[0] == 1 and pred.scores[0] > 0.99
    # (16 - 16) / 0.8 = 0, (32 - 8) / 0.8 = 30, (48 - 16) / 0.8 = 40
    assert torch.allclose(pred.bboxes[0], torch.tensor([0., 30., 40., 60.]))
    mask = pred.masks[0]
    assert mask.shape == (60, 40)
    # canvas rows >= 32 are foreground -> original rows >= (32 - 8) / 0.8
    assert not mask[:29].any() and mask[31:].all()


def test_masks_to_original_identity_and_scaling():
    logits = torch.randn(3, 8, 8)
    same = masks_to_original(logits, (8, 8), (8, 8), (1., 1.))
    assert torch.allclose(same, logits, atol=1e-6)
    up = masks_to_original(logits, (8, 8), (4, 4), (2., 2.))
    assert up.shape == (3, 4, 4)


def test_mask_model_needs_gt_masks():
    model = tiny_detr(with_mask=True)
    model.train()
    with pytest.raises(KeyError, match='with_mask=True'):
        model(torch.randn(1, 3, 64, 64), [sample(64, 64, with_mask=False)],
              mode='loss')


def test_convnext_backbone_through_channel_mapper_and_lora():
    model = MODELS.build(dict(
        type='DINOv3DETR', num_classes=2,
        backbone=dict(type='DINOv3ConvNeXt',
                      arch=dict(depths=[1, 1, 1, 1], dims=[16, 32, 48, 64]),
                      out_indices=(1, 2, 3)),
        neck=dict(type='MultiLevelNeck', in_channels=[32, 48, 64],
                  out_channels=32, scales=(1, 1, 1)),
        in_channels=32, in_levels=(0, 1, 2), embed_dims=32, num_queries=5, num_groups=1,
        decoder=dict(num_layers=1, ffn_dims=64, num_heads=2, cross_heads=2)))
    logits, boxes = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 5, 2) and boxes.shape == (1, 5, 4)
    lora = tiny_detr(lora=dict(r=4, alpha=8, target_modules=('qkv', )))
    trainable = {n for n, p in lora.backbone.named_parameters()
                 if p.requires_grad}
    assert trainable and all('lora' in n for n in trainable)


def test_overfits_one_image():
    """Loss falls and both objects are found after 160 steps on one image."""
    torch.manual_seed(0)
    model = tiny_detr(with_mask=True)
    x = torch.zeros(1, 3, 96, 96)
    x[:, 0, 10:30, 10:40] = 2
    x[:, 2, 50:90, 20:60] = 2
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    first = None
    for _ in range(160):
        loss = sum(model(x, [sample(ori=(96, 96), scale=(1., 1.))],
                         mode='loss').values())
        first = first if first is not None else float(loss)
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert float(loss) < 0.3 * first
    model.eval()
    pred = model.predict(x, [sample(ori=(96, 96), scale=(1., 1.))])[0]
    top = pred.pred_instances[:4]
    from dinov3_mm.models.detectors.box_ops import pairwise_iou
    gt_boxes = torch.tensor([[10., 10, 40, 30], [20, 50, 60, 90]])
    iou, _ = pairwise_iou(top.bboxes, gt_boxes)
    # each object is found by a confident prediction of its class (a
    # duplicate of one object may rank above the other after so few steps)
    for j, label in enumerate((0, 2)):
        hits = (top.labels == label) & (iou[:, j] > 0.7) & (top.scores > 0.3)
        assert hits.any(), (label, top.labels, top.scores, iou[:, j])
    assert top.masks.shape[1:] == (96, 96)
    best_2 = int(torch.nonzero((top.labels == 2) & (iou[:, 1] > 0.7))[0])
    assert top.masks[best_2, 60:80, 30:50].all()


def test_batched_matching_equals_matching_each_image_and_group():
    """One cost matrix for the batch gives the per-(image, group) matches
    and losses of matching every image and group on its own."""
    from dinov3_mm.models.detectors.losses import box_losses, iou_aware_bce
    torch.manual_seed(0)
    model = tiny_detr()
    groups, queries = model.num_groups, model.num_queries
    logits = torch.randn(3, groups * queries, 3)
    boxes = torch.rand(3, groups * queries, 4) * 0.5 + 0.25
    targets = [dict(labels=torch.tensor([0, 2, 1]),
                    boxes=torch.rand(3, 4) * 0.5 + 0.25),
               dict(labels=torch.zeros(0, dtype=torch.long),
                    boxes=torch.zeros(0, 4)),
               dict(labels=torch.tensor([2]),
                    boxes=torch.tensor([[0.5, 0.5, 0.2, 0.3]]))]
    (cls, l1, giou), (images, query_idx, gt_idx) = model._set_losses(
        logits, boxes, targets, groups, num_boxes=4.0)

    expected = {'cls': 0., 'l1': 0., 'giou': 0.}
    found = set()
    offsets = [0, 3, 3]
    for b, target in enumerate(targets):
        for g in range(groups):
            part = slice(g * queries, (g + 1) * queries)
            q, t = model.matcher(logits[b, part], boxes[b, part],
                                 target['labels'], target['boxes'])
            found |= {(b, int(i) + g * queries, int(j) + offsets[b])
                      for i, j in zip(q, t)}
            e_l1, e_giou, ious = box_losses(boxes[b, part][q],
                                            target['boxes'][t], 4.0)
            expected['cls'] += float(iou_aware_bce(
                logits[b, part], q, target['labels'][t], ious, 4.0))
            expected['l1'] += float(e_l1)
            expected['giou'] += float(e_giou)
    assert found == set(zip(images.tolist(), query_idx.tolist(),
                            gt_idx.tolist()))
    w = model.loss_weights
    assert float(cls) == pytest.approx(w['cls'] * expected['cls'] / groups,
                                       rel=1e-5)
    assert float(l1) == pytest.approx(w['l1'] * expected['l1'] / groups,
                                      rel=1e-5)
    assert float(giou) == pytest.approx(
        w['giou'] * expected['giou'] / groups, rel=1e-5)


def test_denoising_queries_copy_the_ground_truth_within_the_noise():
    torch.manual_seed(0)
    model = tiny_detr(denoising=dict(num_groups=2, label_noise=0.0,
                                     box_noise=0.0))
    targets = [dict(labels=torch.tensor([0, 2]),
                    boxes=torch.tensor([[0.3, 0.3, 0.2, 0.2],
                                        [0.6, 0.7, 0.4, 0.2]])),
               dict(labels=torch.tensor([1]),
                    boxes=torch.tensor([[0.5, 0.5, 0.1, 0.3]]))]
    dn = model.denoising_queries(targets)
    assert dn['content'].shape == (2, 4, 64)
    assert dn['valid'].tolist() == [[True, True, True, True],
                                    [True, False, True, False]]
    assert dn['gt_index'][dn['valid']].tolist() == [0, 1, 0, 1, 2, 2]
    assert torch.allclose(dn['reference'][0, 2:], targets[0]['boxes'],
                          atol=1e-6)
    torch.testing.assert_close(dn['content'][0, 1],
                               model.label_embed.weight[2])

    model.dn_cfg.update(box_noise=0.4, label_noise=1.0)
    noisy = model.denoising_queries(targets)['reference'][0, :2]
    xyxy = cxcywh_to_xyxy(noisy)
    gt = targets[0]['boxes']
    gt_xyxy = cxcywh_to_xyxy(gt)
    limit = 0.4 * gt[:, 2:].repeat(1, 2) / 2 + 1e-6
    assert ((xyxy - gt_xyxy).abs() <= limit).all()
    assert not torch.allclose(noisy, gt)
    assert model.denoising_queries([dict(labels=torch.zeros(0).long(),
                                         boxes=torch.zeros(0, 4))]) is None


def test_denoising_groups_are_isolated_in_self_attention():
    model = tiny_detr(denoising=dict(num_groups=2))
    mask = model.group_mask(2, 'cpu', num_dn=6, dn_groups=2)
    assert mask.shape == (6 + 2 * 8, 6 + 2 * 8)
    assert not mask[:3, :3].any() and mask[:3, 3:].all()
    assert not mask[3:6, 3:6].any() and mask[3:6, 6:].all()
    # matching queries never see the denoising ones (no leak of the answer)
    assert mask[6:, :6].all()
    assert not mask[6:14, 6:14].any() and mask[6:14, 14:].all()


@pytest.mark.parametrize('with_mask', [False, True])
def test_denoising_adds_losses_only_in_training(with_mask):
    torch.manual_seed(0)
    plain = tiny_detr(with_mask)
    torch.manual_seed(0)
    model = tiny_detr(with_mask, denoising=dict(num_groups=2))
    missing = model.load_state_dict(plain.state_dict(), strict=False)
    assert missing.missing_keys == ['label_embed.weight']
    model.train()
    losses = model(torch.randn(2, 3, 96, 96), [sample(), sample(w=80)],
                   mode='loss')
    assert {'dn.loss_cls', 'dn.loss_bbox', 'dn.loss_giou',
            'd0.dn.loss_cls'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.label_embed.weight.grad.abs().sum() > 0
    # inference and export never see denoising queries
    model.eval()
    plain.eval()
    x = torch.randn(1, 3, 96, 96)
    for ours, theirs in zip(model(x), plain(x)):
        torch.testing.assert_close(ours, theirs)
