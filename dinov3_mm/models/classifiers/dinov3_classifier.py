"""Image classifier: DINOv3 backbone, optional neck, classification head."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample
from ..lora import apply_lora


@MODELS.register_module()
class DINOv3Classifier(BaseModel):
    """Classifier for linear probing, fine-tuning and LoRA tuning of DINOv3.

    Call graph::

        forward(inputs, data_samples, mode)
        ├── mode='tensor':  extract_feat -> head(feats) -> logits (B, K)
        ├── mode='loss':    extract_feat -> head.loss -> {'loss', 'accuracy'}
        └── mode='predict': extract_feat -> head.predict -> [DataSample]
        extract_feat(inputs) = neck(backbone(inputs)) (no neck: backbone)

    The data preprocessor (normalisation, padding, mixup) runs before
    ``forward`` in ``train_step`` / ``val_step`` / ``test_step``. When no
    backbone parameter requires a gradient (a linear probe, e.g.
    ``frozen_stages=num_layers``), the backbone runs without autograd, which
    saves its activations and takes the fast inference kernels.

    Args:
        backbone (dict): Backbone config, e.g. ``dict(type='DINOv3ViT',
            arch='small', out_type='cls_patch_avg', out_indices=(-1, ))``.
        head (dict): Head config, e.g. ``dict(type='LinearClsHead',
            num_classes=10, in_channels=768)``.
        neck (dict, optional): Neck config. Defaults to None.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            ``dict(type='ClsDataPreprocessor')`` (LVD-1689M normalisation).
        lora (dict, optional): ``dict(r=8, alpha=16, dropout=0.0,
            target_modules=(...))`` for :func:`~dinov3_mm.models.lora.apply_lora`.
            The backbone's pretrained weights (``init_cfg`` Pretrained) are
            loaded first, in the constructor, then adapters are added, so
            the optimizer sees them. Defaults to None.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 neck: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 lora: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(
                dict(dict(type='ClsDataPreprocessor'), **data_preprocessor))
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        self.lora_cfg = dict(lora) if lora else None
        if self.lora_cfg is not None:
            init = getattr(self.backbone, 'init_cfg', None)
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                self.backbone.init_weights()
            apply_lora(self.backbone, **self.lora_cfg)

    @property
    def with_neck(self) -> bool:
        """Whether the model has a neck."""
        return self.neck is not None

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Features the head consumes: one tensor per backbone out index.

        Args:
            inputs (Tensor): Normalised ``(B, 3, H, W)`` images.

        Returns:
            tuple[Tensor]: Backbone (or neck) outputs.
        """
        if self._backbone_frozen():
            with torch.no_grad():
                feats = self.backbone(inputs)
        else:
            feats = self.backbone(inputs)
        return self.neck(feats) if self.with_neck else feats

    def _backbone_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.backbone.parameters())

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'
                ) -> Union[Tensor, Dict[str, Tensor], List[DataSample]]:
        """Run in one of three modes.

        Args:
            inputs (Tensor): Preprocessed ``(B, 3, H, W)`` images.
            data_samples (list[DataSample], optional): Labels (``loss``) or
                samples to fill (``predict``).
            mode (str): ``'tensor'`` (logits), ``'loss'`` (dict of losses and
                the training accuracy) or ``'predict'`` (data samples with
                ``pred_score`` and ``pred_label``). Defaults to ``'tensor'``.
        """
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'Invalid mode {mode!r}; expected "tensor", "loss" '
                         'or "predict".')

    def loss(self, inputs: Tensor,
             data_samples: Sequence[DataSample]) -> Dict[str, Tensor]:
        """Head loss (``loss``) and batch accuracy in percent (``accuracy``)."""
        return self.head.loss(self.extract_feat(inputs), data_samples)

    def predict(self,
                inputs: Tensor,
                data_samples: Optional[Sequence[DataSample]] = None
                ) -> List[DataSample]:
        """Data samples with ``pred_score`` and ``pred_label`` (``gt_label`` kept)."""
        return self.head.predict(self.extract_feat(inputs), data_samples)
