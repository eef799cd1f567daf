"""Real-time DETR with optional instance masks on a DINOv3 backbone."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DetDataSample
from ..lora import apply_lora
from .box_ops import cxcywh_to_xyxy, inverse_sigmoid, xyxy_to_cxcywh
from .decoder import MLP, DETRDecoder
from .losses import box_losses, iou_aware_bce, mask_losses
from .mask_head import QueryMaskHead, masks_to_original
from .matcher import HungarianMatcher

Shapes = List[Tuple[int, int]]


@MODELS.register_module()
class DINOv3DETR(BaseModel):
    """Two-stage deformable DETR with iterative refinement and group queries.

    In the spirit of LW-DETR / RF-DETR: the backbone (a DINOv3 ViT through a
    simple feature pyramid, or a DINOv3 ConvNeXt through a channel mapper)
    is the encoder; there is no transformer encoder.

    Call graph::

        extract_feat: backbone -> neck -> 1x1 projections of ``in_levels``
        forward_heads:
            two-stage: per query group, each position of the flattened levels
                scores classes and refines an anchor box; the top
                ``num_queries`` become the group's reference boxes
            decoder: learned content queries, self-attention (blocked between
                groups), deformable cross-attention, box refinement per layer
        loss:    Hungarian matching per image, group, layer and the two-stage
                 proposals -> IoU-aware BCE + L1 + GIoU (+ point-sampled mask
                 BCE + Dice on the matched queries of the last layer)
        predict: group 0 only -> top ``num_select`` (query, class) scores ->
                 boxes (and masks) in original image coordinates

    Boxes are normalised by the padded network input (padding is at the right
    and bottom, so pixel coordinates do not move).

    Args:
        backbone (dict): Backbone config (``DINOv3ViT`` with
            ``out_type='featmap'`` or ``DINOv3ConvNeXt``).
        num_classes (int): Number of object classes.
        neck (dict, optional): Neck giving a tuple of maps (``SimpleFPN``,
            ``MultiLevelNeck``).
        in_channels (int | Sequence[int]): Channels of the neck (or
            backbone) outputs. Defaults to 256.
        in_levels (Sequence[int]): Outputs used by the decoder. Defaults to
            ``(1, 2, 3)`` (strides 8, 16, 32 of a 4-level pyramid).
        with_mask (bool): Predict instance masks. Defaults to False.
        mask_level (int): Output holding the stride-4 map for masks.
            Defaults to 0.
        embed_dims (int): Decoder channels. Defaults to 256.
        num_queries (int): Queries per group. Defaults to 100.
        num_groups (int): Group-DETR query groups used in training (one at
            test time). Defaults to 4.
        decoder (dict, optional): Overrides of :class:`DETRDecoder` (e.g.
            ``num_layers``, ``ffn_dims``, ``num_points``).
        mask_dims (int): Mask embedding channels. Defaults to 64.
        num_mask_points (int): Points per mask in the mask loss. Defaults to
            1024.
        loss_weights (dict, optional): Overrides of ``cls=1, l1=5, giou=2,
            mask=5, dice=5``.
        matcher (dict, optional): :class:`HungarianMatcher` arguments.
        denoising (dict, optional): Denoising queries in training (DN-DETR):
            ``num_groups`` noised copies of the ground truth (default 3),
            ``label_noise`` (share of labels replaced at random, default
            0.25) and ``box_noise`` (corner shift as a fraction of the half
            side, default 0.4). Each copy is decoded in its own attention
            block and supervised with its known object (``dn.`` losses), so
            the decoder learns to classify and refine without waiting for
            the matching to settle. None (default) turns them off.
        test_cfg (dict, optional): ``num_select`` (default 100),
            ``mask_threshold`` (logit, default 0).
        lora (dict, optional): LoRA adapters on the backbone, see
            :func:`~dinov3_mm.models.lora.apply_lora`.
        data_preprocessor (dict, optional): Overrides of
            ``DetDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int,
                 neck: Optional[dict] = None,
                 in_channels=256,
                 in_levels: Sequence[int] = (1, 2, 3),
                 with_mask: bool = False,
                 mask_level: int = 0,
                 embed_dims: int = 256,
                 num_queries: int = 100,
                 num_groups: int = 4,
                 decoder: Optional[dict] = None,
                 mask_dims: int = 64,
                 num_mask_points: int = 1024,
                 loss_weights: Optional[dict] = None,
                 matcher: Optional[dict] = None,
                 denoising: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 lora: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        data_preprocessor = MODELS.build(
            dict(type='DetDataPreprocessor', **(data_preprocessor or {})))
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.lora_cfg = dict(lora) if lora else None
        if self.lora_cfg is not None:
            init = getattr(self.backbone, 'init_cfg', None)
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                self.backbone.init_weights()
            apply_lora(self.backbone, **self.lora_cfg)
        self.num_classes = num_classes
        self.in_levels = tuple(in_levels)
        if isinstance(in_channels, int):
            in_channels = [in_channels] * (max(self.in_levels + (
                mask_level, )) + 1)
        self.in_channels = list(in_channels)
        self.with_mask = with_mask
        self.mask_level = mask_level
        self.embed_dims = embed_dims
        self.num_queries = num_queries
        self.num_groups = num_groups
        self.num_mask_points = num_mask_points
        self.loss_weights = {**dict(cls=1.0, l1=5.0, giou=2.0, mask=5.0,
                                    dice=5.0), **(loss_weights or {})}
        self.matcher = HungarianMatcher(**(matcher or {}))
        self.dn_cfg = ({**dict(num_groups=3, label_noise=0.25,
                               box_noise=0.4), **denoising}
                       if denoising else None)
        self.label_embed = (nn.Embedding(num_classes, embed_dims)
                            if self.dn_cfg else None)
        self.test_cfg = {**dict(num_select=100, mask_threshold=0.0),
                         **(test_cfg or {})}

        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(self.in_channels[i], embed_dims, 1),
                          nn.GroupNorm(32 if embed_dims % 32 == 0 else 1,
                                       embed_dims))
            for i in self.in_levels)
        self.enc_proj = nn.ModuleList(
            nn.Sequential(nn.Linear(embed_dims, embed_dims),
                          nn.LayerNorm(embed_dims))
            for _ in range(num_groups))
        self.enc_cls = nn.ModuleList(
            nn.Linear(embed_dims, num_classes) for _ in range(num_groups))
        self.enc_box = nn.ModuleList(
            MLP(embed_dims, embed_dims, 4, 3) for _ in range(num_groups))
        self.query_content = nn.Embedding(num_queries * num_groups,
                                          embed_dims)
        self.decoder = DETRDecoder(num_classes, embed_dims,
                                   num_levels=len(self.in_levels),
                                   **(decoder or {}))
        self.mask_head = (QueryMaskHead(self.in_channels[mask_level],
                                        embed_dims, mask_dims)
                          if with_mask else None)
        self._init_two_stage()

    def _init_two_stage(self) -> None:
        prior = self.decoder.cls_heads[0].bias.detach()[:1]
        for cls_head, box_head in zip(self.enc_cls, self.enc_box):
            nn.init.constant_(cls_head.bias, float(prior))
            nn.init.zeros_(box_head[-1].weight)
            nn.init.zeros_(box_head[-1].bias)

    # ------------------------------------------------------------------
    # features and heads
    # ------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone (and neck) maps."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)

    @staticmethod
    def anchors(shapes: Shapes, device, dtype) -> Tensor:
        """Anchor boxes (inverse sigmoid) at every position of every level:
        cell centres, side ``0.05 * 2 ** level`` of the input."""
        anchors = []
        for level, (h, w) in enumerate(shapes):
            ys = (torch.arange(h, device=device, dtype=torch.float32) +
                  0.5) / h
            xs = (torch.arange(w, device=device, dtype=torch.float32) +
                  0.5) / w
            cy, cx = torch.meshgrid(ys, xs, indexing='ij')
            wh = torch.full_like(cx, 0.05 * 2.0**level)
            anchors.append(torch.stack([cx, cy, wh, wh], -1).reshape(-1, 4))
        return inverse_sigmoid(torch.cat(anchors)).to(dtype)

    @staticmethod
    def valid_positions(shapes: Shapes, data_samples: Optional[List],
                        canvas_hw: Tuple[int, int], device) -> Optional[Tensor]:
        """``(B, S)`` bool, False where a position lies in the padding; None
        when there is no padding information (export)."""
        if not data_samples:
            return None
        masks = []
        for sample in data_samples:
            img_h, img_w = sample.metainfo.get('img_shape', canvas_hw)[:2]
            levels = []
            for h, w in shapes:
                # a cell is valid when any of it overlaps the image
                rows = torch.arange(h, device=device) * canvas_hw[0] / h
                cols = torch.arange(w, device=device) * canvas_hw[1] / w
                levels.append(((rows[:, None] < img_h) &
                               (cols[None, :] < img_w)).flatten())
            masks.append(torch.cat(levels))
        valid = torch.stack(masks)
        return None if bool(valid.all()) else valid

    def forward_heads(self, inputs: Tensor,
                      data_samples: Optional[List] = None,
                      targets: Optional[List[dict]] = None) -> dict:
        """Run the detector up to per-layer logits and boxes.

        Returns:
            dict: ``logits`` / ``boxes``: lists over decoder layers of
            ``(B, G*Q, C)`` / ``(B, G*Q, 4)``; ``enc_logits`` / ``enc_boxes``:
            ``(B, G*Q, C)`` / ``(B, G*Q, 4)`` of the selected proposals;
            ``queries`` ``(B, G*Q, D)``; ``pixels`` mask embeddings or None.
        """
        feats = self.extract_feat(inputs)
        levels = [proj(feats[i])
                  for proj, i in zip(self.input_proj, self.in_levels)]
        shapes = [(int(x.shape[-2]), int(x.shape[-1])) for x in levels]
        memory = torch.cat([x.flatten(2).transpose(1, 2) for x in levels], 1)
        anchors = self.anchors(shapes, memory.device, memory.dtype)
        valid = self.valid_positions(shapes, data_samples,
                                     tuple(inputs.shape[-2:]), memory.device)
        groups = self.num_groups if self.training else 1
        enc_logits, enc_boxes, references = [], [], []
        for g in range(groups):
            enc_memory = self.enc_proj[g](memory)
            logits = self.enc_cls[g](enc_memory)
            score = logits.max(-1).values
            if valid is not None:
                score = score.masked_fill(~valid, float('-inf'))
            top = score.topk(self.num_queries, dim=1).indices
            logits = torch.gather(
                logits, 1, top[..., None].expand(-1, -1, logits.shape[-1]))
            # the box head only runs on the selected positions
            selected = torch.gather(
                enc_memory, 1, top[..., None].expand(-1, -1, self.embed_dims))
            boxes = self.enc_box[g](selected) + anchors[top]
            enc_logits.append(logits)
            enc_boxes.append(boxes.sigmoid())
            references.append(boxes.sigmoid().detach())
        batch = inputs.shape[0]
        query = self.query_content.weight[:groups * self.num_queries]
        query = query[None].expand(batch, -1, -1)
        reference = torch.cat(references, 1)
        dn = (self.denoising_queries(targets)
              if self.training and self.dn_cfg and targets else None)
        num_dn = 0
        if dn is not None:
            num_dn = dn['content'].shape[1]
            query = torch.cat([dn['content'].to(query.dtype), query], 1)
            reference = torch.cat([dn['reference'].to(reference.dtype),
                                   reference], 1)
        attn_mask = self.group_mask(groups, inputs.device, num_dn,
                                    dn['num_groups'] if dn else 0)
        logits, boxes, queries = self.decoder(query, reference, memory,
                                              shapes, attn_mask)
        if dn is not None:
            dn['logits'] = [x[:, :num_dn] for x in logits]
            dn['boxes'] = [x[:, :num_dn] for x in boxes]
            logits = [x[:, num_dn:] for x in logits]
            boxes = [x[:, num_dn:] for x in boxes]
            queries = queries[:, num_dn:]
        pixels = None
        if self.mask_head is not None:
            pixels = self.mask_head.pixels(feats[self.mask_level])
        return dict(logits=logits, boxes=boxes,
                    enc_logits=torch.cat(enc_logits, 1),
                    enc_boxes=torch.cat(enc_boxes, 1), queries=queries,
                    pixels=pixels, dn=dn)

    def group_mask(self, groups: int, device, num_dn: int = 0,
                   dn_groups: int = 0) -> Optional[Tensor]:
        """Block-diagonal self-attention mask (True = blocked): each query
        group, and each denoising group (the first ``num_dn`` queries),
        attends only to itself."""
        if groups == 1 and num_dn == 0:
            return None
        ids = torch.arange(groups * self.num_queries,
                           device=device) // self.num_queries
        if num_dn:
            dn_ids = torch.arange(num_dn, device=device) // (num_dn //
                                                             dn_groups)
            ids = torch.cat([dn_ids, ids + dn_groups])
        return ids[:, None] != ids[None, :]

    def denoising_queries(self, targets: List[dict]) -> Optional[dict]:
        """Noised copies of the ground truth as extra decoder queries.

        Every image's objects are padded to the batch's largest count ``N``;
        ``num_groups`` copies give ``K * N`` queries per image whose content
        is the (possibly replaced) label's embedding and whose reference is
        the box with each corner shifted by up to ``box_noise`` of the half
        side.

        Returns:
            dict | None: ``content`` ``(B, K*N, D)``, ``reference`` ``(B,
            K*N, 4)``, ``valid`` ``(B, K*N)`` (False for padding), ``gt_index``
            ``(B, K*N)`` into the batch's concatenated objects and
            ``num_groups``; None when the batch has no object.
        """
        sizes = [len(t['labels']) for t in targets]
        most = max(sizes)
        if most == 0:
            return None
        cfg = self.dn_cfg
        k = cfg['num_groups']
        batch = len(targets)
        device = targets[0]['boxes'].device
        boxes = torch.tensor([0.5, 0.5, 0.1, 0.1], device=device).repeat(
            batch, most, 1)
        labels = torch.zeros(batch, most, dtype=torch.long, device=device)
        valid = torch.zeros(batch, most, dtype=torch.bool, device=device)
        gt_index = torch.zeros(batch, most, dtype=torch.long, device=device)
        offset = 0
        for b, (target, size) in enumerate(zip(targets, sizes)):
            boxes[b, :size] = target['boxes']
            labels[b, :size] = target['labels']
            valid[b, :size] = True
            gt_index[b, :size] = torch.arange(offset, offset + size,
                                              device=device)
            offset += size
        boxes, labels = boxes.repeat(1, k, 1), labels.repeat(1, k)
        replace = torch.rand(labels.shape, device=device) < cfg['label_noise']
        labels = torch.where(
            replace, torch.randint_like(labels, self.num_classes), labels)
        xyxy = cxcywh_to_xyxy(boxes)
        half = boxes[..., 2:].repeat(1, 1, 2) / 2
        shift = (torch.rand_like(xyxy) * 2 - 1) * cfg['box_noise'] * half
        xyxy = (xyxy + shift).clamp(0, 1)
        xyxy[..., 2:] = torch.maximum(xyxy[..., 2:], xyxy[..., :2] + 1e-3)
        return dict(content=self.label_embed(labels),
                    reference=xyxy_to_cxcywh(xyxy).clamp(0, 1),
                    valid=valid.repeat(1, k), gt_index=gt_index.repeat(1, k),
                    num_groups=k)

    def _denoising_losses(self, logits: Tensor, boxes: Tensor, dn: dict,
                          targets: List[dict], num_boxes: float):
        """Classification and box losses of the denoising queries of one
        layer against their known objects (averaged over the copies)."""
        valid = dn['valid']
        gt_index = dn['gt_index'][valid]
        gt_boxes = torch.cat([t['boxes'] for t in targets])[gt_index]
        gt_labels = torch.cat([t['labels'] for t in targets])[gt_index]
        norm = num_boxes * dn['num_groups']
        l1, giou, ious = box_losses(boxes[valid], gt_boxes, norm)
        picked = logits[valid]
        cls = iou_aware_bce(picked, torch.arange(len(picked),
                                                 device=picked.device),
                            gt_labels, ious, norm)
        w = self.loss_weights
        return w['cls'] * cls, w['l1'] * l1, w['giou'] * giou

    # ------------------------------------------------------------------
    # modes
    # ------------------------------------------------------------------
    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.forward_tensor(inputs)
        raise ValueError(f'Invalid mode {mode!r}; expected tensor, loss or '
                         'predict.')

    def forward_tensor(self, inputs: Tensor):
        """Raw outputs of the first query group (what export uses).

        Returns:
            tuple: class logits ``(B, Q, C)``, normalised cxcywh boxes
            ``(B, Q, 4)`` and, for mask models, mask logits ``(B, Q, H/4,
            W/4)`` (stride of ``mask_level``).
        """
        out = self.forward_heads(inputs)
        logits = out['logits'][-1][:, :self.num_queries]
        boxes = out['boxes'][-1][:, :self.num_queries]
        if self.mask_head is None:
            return logits, boxes
        queries = out['queries'][:, :self.num_queries]
        return logits, boxes, self.mask_head.logits(queries, out['pixels'])

    def _targets(self, inputs: Tensor, data_samples: List):
        """Normalised cxcywh boxes, labels and masks of every image."""
        canvas_h, canvas_w = inputs.shape[-2:]
        scale = inputs.new_tensor([canvas_w, canvas_h, canvas_w, canvas_h])
        targets = []
        for sample in data_samples:
            gt = sample.gt_instances
            boxes = xyxy_to_cxcywh(gt.bboxes.to(inputs.device).float() /
                                   scale)
            masks = None
            if self.mask_head is not None:
                if 'masks' not in gt:
                    raise KeyError(
                        f"{sample.metainfo.get('img_path', 'A sample')} has "
                        'no gt masks but the detector has with_mask=True: '
                        'load the annotations with masks (LoadDetAnnotations'
                        '(with_mask=True)) or set with_mask=False.')
                masks = gt.masks.to(inputs.device)
                pad_h = canvas_h - masks.shape[-2]
                pad_w = canvas_w - masks.shape[-1]
                masks = torch.nn.functional.pad(masks.float(),
                                                (0, pad_w, 0, pad_h))
            targets.append(dict(boxes=boxes,
                                labels=gt.labels.to(inputs.device).long(),
                                masks=masks))
        return targets

    def _num_boxes(self, targets: List[dict], device) -> float:
        """Ground-truth objects in the batch, averaged over ranks (>= 1)."""
        num = torch.tensor(float(sum(len(t['labels']) for t in targets)),
                           device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(num)
            num = num / dist.get_world_size()
        return max(float(num), 1.0)

    def _match(self, logits: Tensor, boxes: Tensor, targets: List[dict],
               groups: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Hungarian matches of every image and query group.

        The matching cost of all queries against all ground truth of the
        batch is computed at once; each (image, group) block is assigned on
        its own.

        Returns:
            tuple[Tensor, Tensor, Tensor]: image, query (into the ``G*Q``
            set) and ground-truth (into the batch's concatenated objects)
            indices of the matches.
        """
        sizes = [len(t['labels']) for t in targets]
        device = logits.device
        empty = torch.zeros(0, dtype=torch.long, device=device)
        if sum(sizes) == 0:
            return empty, empty, empty
        batch, num_sets = logits.shape[:2]
        cost = self.matcher.cost(
            logits.flatten(0, 1), boxes.flatten(0, 1),
            torch.cat([t['labels'] for t in targets]),
            torch.cat([t['boxes'] for t in targets]))
        cost = torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)
        cost = cost.view(batch, num_sets, -1).cpu().numpy()
        image_idx, query_idx, gt_idx = [], [], []
        offset = 0
        for b, size in enumerate(sizes):
            for g in range(groups if size else 0):
                first = g * self.num_queries
                rows, cols = linear_sum_assignment(
                    cost[b, first:first + self.num_queries,
                         offset:offset + size])
                image_idx.append(np.full(len(rows), b))
                query_idx.append(rows + first)
                gt_idx.append(cols + offset)
            offset += size
        return tuple(
            torch.as_tensor(np.concatenate(idx), dtype=torch.long,
                            device=device)
            for idx in (image_idx, query_idx, gt_idx))

    def _set_losses(self, logits: Tensor, boxes: Tensor,
                    targets: List[dict], groups: int, num_boxes: float):
        """Matched losses of one prediction set (all groups) and the matches.

        Returns:
            tuple: ``(cls, l1, giou)`` loss tensors and the matches of
            :meth:`_match`.
        """
        matches = self._match(logits, boxes, targets, groups)
        image_idx, query_idx, gt_idx = matches
        gt_boxes = torch.cat([t['boxes'] for t in targets])
        gt_labels = torch.cat([t['labels'] for t in targets])
        l1, giou, ious = box_losses(boxes[image_idx, query_idx],
                                    gt_boxes[gt_idx], num_boxes)
        cls_loss = iou_aware_bce(
            logits.flatten(0, 1), image_idx * logits.shape[1] + query_idx,
            gt_labels[gt_idx], ious, num_boxes)
        w = self.loss_weights
        return ((w['cls'] * cls_loss / groups, w['l1'] * l1 / groups,
                 w['giou'] * giou / groups), matches)

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """Losses of the last layer, every earlier layer (``d{i}.``) and the
        two-stage proposals (``enc.``); ``loss_mask``/``loss_dice`` for mask
        models."""
        targets = self._targets(inputs, data_samples)
        out = self.forward_heads(inputs, data_samples, targets)
        num_boxes = self._num_boxes(targets, inputs.device)
        groups = self.num_groups
        losses = {}
        num_layers = len(out['logits'])
        last_matches = None
        for i, (logits, boxes) in enumerate(zip(out['logits'],
                                                out['boxes'])):
            terms, matches = self._set_losses(logits, boxes, targets, groups,
                                              num_boxes)
            prefix = '' if i == num_layers - 1 else f'd{i}.'
            for name, value in zip(('loss_cls', 'loss_bbox', 'loss_giou'),
                                   terms):
                losses[prefix + name] = value
            last_matches = matches
            if out['dn'] is not None:
                dn_terms = self._denoising_losses(
                    out['dn']['logits'][i], out['dn']['boxes'][i], out['dn'],
                    targets, num_boxes)
                for name, value in zip(('loss_cls', 'loss_bbox',
                                        'loss_giou'), dn_terms):
                    losses[prefix + 'dn.' + name] = value
        terms, _ = self._set_losses(out['enc_logits'], out['enc_boxes'],
                                    targets, groups, num_boxes)
        for name, value in zip(('loss_cls', 'loss_bbox', 'loss_giou'),
                               terms):
            losses['enc.' + name] = value
        if self.mask_head is not None:
            losses.update(self._mask_losses(out, targets, last_matches,
                                            groups, num_boxes))
        return losses

    def _mask_losses(self, out: dict, targets: List[dict], matches: tuple,
                     groups: int, num_boxes: float) -> Dict[str, Tensor]:
        """Point-sampled BCE and Dice of the matched queries' masks."""
        image_idx, query_idx, gt_idx = matches
        if len(gt_idx) == 0:
            zero = out['pixels'].sum() * 0
            return dict(loss_mask=zero, loss_dice=zero)
        pred = self.mask_head.logits(out['queries'][image_idx, query_idx,
                                                    None],
                                     out['pixels'][image_idx])[:, 0]
        gt = torch.cat([t['masks'] for t in targets])[gt_idx]
        ce, dice = mask_losses(pred, gt, num_boxes, self.num_mask_points)
        w = self.loss_weights
        return dict(loss_mask=w['mask'] * ce / groups,
                    loss_dice=w['dice'] * dice / groups)

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List] = None) -> List[DetDataSample]:
        """Top ``num_select`` detections per image in original coordinates.
        """
        out = self.forward_heads(inputs, data_samples)
        logits = out['logits'][-1][:, :self.num_queries].float()
        boxes = out['boxes'][-1][:, :self.num_queries].float()
        canvas_h, canvas_w = inputs.shape[-2:]
        if data_samples is None:
            data_samples = [DetDataSample() for _ in range(len(inputs))]
        num_select = min(self.test_cfg['num_select'],
                         logits.shape[1] * logits.shape[2])
        scores, index = logits.sigmoid().flatten(1).topk(num_select, dim=1)
        query_index = torch.div(index, self.num_classes,
                                rounding_mode='floor')
        labels = index % self.num_classes
        for b, sample in enumerate(data_samples):
            meta = sample.metainfo
            ori_h, ori_w = meta.get('ori_shape', (canvas_h, canvas_w))[:2]
            sx, sy = meta.get('scale_factor', (1.0, 1.0))[:2]
            left, top = meta.get('border', (0, 0))[:2]
            xyxy = cxcywh_to_xyxy(boxes[b, query_index[b]]) * inputs.new_tensor(
                [canvas_w, canvas_h, canvas_w, canvas_h])
            xyxy = (xyxy - xyxy.new_tensor([left, top, left, top])
                    ) / xyxy.new_tensor([sx, sy, sx, sy])
            xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, ori_w)
            xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, ori_h)
            result = InstanceData(bboxes=xyxy, scores=scores[b],
                                  labels=labels[b])
            if self.mask_head is not None:
                mask_logits = self.mask_head.logits(
                    out['queries'][b, query_index[b]], out['pixels'][b])
                result.masks = masks_to_original(
                    mask_logits, (canvas_h, canvas_w), (ori_h, ori_w),
                    (sx, sy), (left, top)) > self.test_cfg['mask_threshold']
            sample.pred_instances = result
        return data_samples
