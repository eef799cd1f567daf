"""Encoder-decoder semantic segmentation on a DINOv3 backbone."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from torch import Tensor

from dinov3_mm.registry import MODELS


@MODELS.register_module()
class DINOv3Segmentor(BaseModel):
    """Backbone -> optional neck -> decode head (+ auxiliary head).

    Call graph::

        loss:    extract_feat -> decode_head -> resize to mask -> loss_decode
                 (+ auxiliary_head -> loss_decode * aux_weight)
        predict: inference (whole or slide, optional flip) -> crop padding
                 -> resize to the original image -> argmax / threshold

    Heads map a tuple of feature maps to logits ``(B, C, h, w)``; ``C == 1``
    means binary segmentation with a sigmoid and ``threshold``.

    Args:
        backbone (dict): Backbone config (e.g. ``DINOv3ViT`` with
            ``out_type='featmap'``).
        decode_head (dict): Head config.
        neck (dict, optional): Neck config; a neck with ``needs_inputs =
            True`` also receives the normalised images.
        auxiliary_head (dict, optional): Extra head trained alongside.
        loss_decode (dict): Loss config. Defaults to cross-entropy with ignore
            index 255.
        aux_weight (float): Weight of the auxiliary loss. Defaults to 0.4.
        threshold (float): Binary decision threshold. Defaults to 0.5.
        test_cfg (dict): ``mode='whole'`` or ``'slide'`` (with ``crop_size``
            and ``stride``), ``flip=False`` for flip test-time augmentation.
        data_preprocessor (dict, optional): Overrides of the
            ``SegDataPreprocessor`` arguments (or another ``type``).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 auxiliary_head: Optional[dict] = None,
                 loss_decode: Optional[dict] = None,
                 aux_weight: float = 0.4,
                 threshold: float = 0.5,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        data_preprocessor = MODELS.build(
            dict(type='SegDataPreprocessor', **(data_preprocessor or {})))
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.decode_head = MODELS.build(decode_head)
        self.auxiliary_head = (MODELS.build(auxiliary_head)
                               if auxiliary_head is not None else None)
        self.loss_decode = MODELS.build(
            loss_decode or dict(type='SegCrossEntropyLoss', ignore_index=255))
        self.aux_weight = aux_weight
        self.threshold = threshold
        self.test_cfg = {'mode': 'whole', 'flip': False, **(test_cfg or {})}
        if self.test_cfg['mode'] not in ('whole', 'slide'):
            raise ValueError(f"test_cfg.mode must be 'whole' or 'slide', got "
                             f"{self.test_cfg['mode']!r}.")

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone (and neck) feature maps."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            if getattr(self.neck, 'needs_inputs', False):
                feats = self.neck(feats, inputs)
            else:
                feats = self.neck(feats)
        return tuple(feats)

    def _logits(self, inputs: Tensor) -> Tensor:
        """Decode-head logits resized to the input size."""
        logits = self.decode_head(self.extract_feat(inputs))
        return F.interpolate(logits, size=inputs.shape[-2:], mode='bilinear',
                             align_corners=False)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._logits(inputs)
        raise ValueError(f'Invalid mode {mode!r}; expected tensor, loss or '
                         'predict.')

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """Decode (and auxiliary) losses against the padded masks."""
        target = torch.stack(
            [s.gt_sem_seg.data.squeeze(0) for s in data_samples]).long()
        feats = self.extract_feat(inputs)
        losses = {'loss_seg': self._head_loss(self.decode_head, feats,
                                              target)}
        if self.auxiliary_head is not None:
            losses['loss_aux'] = self.aux_weight * self._head_loss(
                self.auxiliary_head, feats, target)
        return losses

    def _head_loss(self, head, feats: Tuple[Tensor, ...],
                   target: Tensor) -> Tensor:
        logits = F.interpolate(head(feats), size=target.shape[-2:],
                               mode='bilinear', align_corners=False)
        return self.loss_decode(logits, target)

    @torch.no_grad()
    def inference(self, inputs: Tensor) -> Tensor:
        """Logits at input size: whole or sliding window, optional flip."""
        run = (self._logits if self.test_cfg['mode'] == 'whole' else
               self.slide_inference)
        logits = run(inputs)
        if self.test_cfg['flip']:
            logits = (logits + run(inputs.flip(-1)).flip(-1)) / 2
        return logits

    def slide_inference(self, inputs: Tensor) -> Tensor:
        """Average the logits of overlapping crops.

        ``test_cfg`` needs ``crop_size=(h, w)`` and ``stride=(h, w)``.
        """
        crop_h, crop_w = self.test_cfg['crop_size']
        stride_h, stride_w = self.test_cfg['stride']
        B, _, H, W = inputs.shape
        rows = max(H - crop_h + stride_h - 1, 0) // stride_h + 1
        cols = max(W - crop_w + stride_w - 1, 0) // stride_w + 1
        logits, count = None, inputs.new_zeros((B, 1, H, W))
        for r in range(rows):
            for c in range(cols):
                y1 = min(r * stride_h, max(H - crop_h, 0))
                x1 = min(c * stride_w, max(W - crop_w, 0))
                y2, x2 = min(y1 + crop_h, H), min(x1 + crop_w, W)
                crop_logits = self._logits(inputs[:, :, y1:y2, x1:x2])
                if logits is None:
                    logits = inputs.new_zeros(
                        (B, crop_logits.shape[1], H, W))
                logits[:, :, y1:y2, x1:x2] += crop_logits
                count[:, :, y1:y2, x1:x2] += 1
        return logits / count

    def predict(self, inputs: Tensor, data_samples: Optional[List] = None
                ) -> List:
        """Per-image logits and labels at the original image size."""
        from mmseg.structures import SegDataSample
        logits = self.inference(inputs)
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(len(inputs))]
        for sample, sample_logits in zip(data_samples, logits):
            sample_logits = self._to_original(sample_logits, sample.metainfo)
            if sample_logits.shape[0] == 1:
                probs = sample_logits.sigmoid()
                labels = (probs > self.threshold).long()
            else:
                labels = sample_logits.argmax(0, keepdim=True)
            sample.seg_logits = PixelData(data=sample_logits)
            sample.pred_sem_seg = PixelData(data=labels)
        return data_samples

    @staticmethod
    def _to_original(logits: Tensor, meta: dict) -> Tensor:
        """Remove the pipeline's padding and resize to ``ori_shape``."""
        top, _, left, _ = meta.get('pad_border', (0, 0, 0, 0))
        h, w = meta.get('img_shape', logits.shape[-2:])
        logits = logits[:, top:top + h, left:left + w]
        ori = meta.get('ori_shape')
        if ori is not None and tuple(ori[:2]) != tuple(logits.shape[-2:]):
            logits = F.interpolate(logits[None], size=tuple(ori[:2]),
                                   mode='bilinear', align_corners=False)[0]
        return logits
