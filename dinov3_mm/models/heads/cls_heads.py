"""Classification heads on DINOv3 features (linear probe, MLP, multi-label).

Input features are the backbone's tuple, one tensor per ``out_indices``
entry. The head concatenates them along channels, so ``in_channels`` is the
total width: the official linear probe,
``DINOv3ViT(out_type='cls_patch_avg', out_indices=(-4, -3, -2, -1))``, gives
four ``(B, 2C)`` tensors and ``in_channels = 8 * C``. Feature maps
``(B, C, h, w)`` (e.g. ConvNeXt ``out_type='featmap'``) are average-pooled
first.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample

Features = Union[Tensor, Sequence[Tensor]]


def concat_features(feats: Features) -> Tensor:
    """Concatenate a tuple of ``(B, C_i)`` / ``(B, C_i, h, w)`` features.

    Args:
        feats (Tensor | Sequence[Tensor]): Backbone or neck output.

    Returns:
        Tensor: ``(B, sum(C_i))``; 4-D maps are globally average-pooled.
    """
    if isinstance(feats, Tensor):
        feats = (feats, )
    flat = []
    for feat in feats:
        if feat.ndim == 4:
            feat = feat.mean(dim=(2, 3))
        elif feat.ndim != 2:
            raise ValueError(f'Classification heads take (B, C) or (B, C, h, '
                             f'w) features, got shape {tuple(feat.shape)}; use '
                             "out_type='cls_patch_avg' or 'cls_token'.")
        flat.append(feat)
    return flat[0] if len(flat) == 1 else torch.cat(flat, dim=1)


class ClsHead(BaseModule):
    """Base of the classification heads: targets, loss, accuracy, predictions.

    Subclasses build layers and implement :meth:`forward` (features to
    logits).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the concatenated features.
        loss (dict, optional): Loss config. Defaults to
            ``dict(type='CrossEntropyLoss', use_sigmoid=multi_label)``;
            e.g. ``dict(type='CrossEntropyLoss', label_smoothing=0.1,
            class_weight=[...])``.
        multi_label (bool): Sigmoid scores, multi-hot targets built from the
            positive indices in ``gt_label``. Defaults to False.
        thr (float): Multi-label: score threshold of ``pred_label``.
            Defaults to 0.5.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: Optional[dict] = None,
                 multi_label: bool = False,
                 thr: float = 0.5,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.multi_label = multi_label
        self.thr = thr
        loss = dict(type='CrossEntropyLoss', use_sigmoid=multi_label) \
            if loss is None else dict(loss)
        if multi_label and loss.get('type') == 'CrossEntropyLoss':
            loss.setdefault('use_sigmoid', True)
        self.loss_module = MODELS.build(loss)

    def pre_logits(self, feats: Features) -> Tensor:
        """The ``(B, in_channels)`` input of the classifier layer."""
        x = concat_features(feats)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects in_channels={self.in_channels} '
                f'but the features have {x.shape[1]} channels; set in_channels '
                'to the total width of all out_indices (2 * embed_dims each '
                "for out_type='cls_patch_avg').")
        return x

    def forward(self, feats: Features) -> Tensor:
        raise NotImplementedError

    def loss(self, feats: Features,
             data_samples: Sequence[DataSample]) -> Dict[str, Tensor]:
        """Loss and training accuracy (percent) of a batch.

        Uses ``gt_score`` (soft targets, e.g. from mixup) when every sample
        has one, ``gt_label`` otherwise.
        """
        logits = self(feats)
        target = self.get_targets(data_samples, logits.device)
        losses = dict(loss=self.loss_module(logits, target))
        with torch.no_grad():
            losses['accuracy'] = self._accuracy(logits, target)
        return losses

    def get_targets(self, data_samples: Sequence[DataSample],
                    device: torch.device) -> Tensor:
        """``(N, C)`` soft / multi-hot targets, or ``(N,)`` class indices."""
        if not data_samples:
            raise ValueError('Computing a loss needs data_samples with labels.')
        if all('gt_score' in s for s in data_samples):
            return torch.stack([s.gt_score for s in data_samples]).to(device)
        missing = [i for i, s in enumerate(data_samples) if 'gt_label' not in s]
        if missing:
            raise ValueError(f'Samples {missing} of the batch have no gt_label.')
        if self.multi_label:
            target = torch.zeros(len(data_samples), self.num_classes,
                                 device=device)
            for i, sample in enumerate(data_samples):
                target[i, self._checked(sample.gt_label)] = 1
            return target
        labels = [s.gt_label for s in data_samples]
        if any(label.numel() != 1 for label in labels):
            raise ValueError('Single-label heads need one gt_label per sample; '
                             'set multi_label=True for several positives.')
        return self._checked(torch.cat(labels)).to(device)

    def _checked(self, labels: Tensor) -> Tensor:
        if labels.numel() and (labels.min() < 0
                               or labels.max() >= self.num_classes):
            raise ValueError(f'Label {labels.tolist()} is outside [0, '
                             f'{self.num_classes}); check num_classes.')
        return labels

    def _accuracy(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.multi_label:
            hit = (logits.sigmoid() >= self.thr) == (target >= 0.5)
            return hit.float().mean() * 100
        if target.ndim == 2:
            target = target.argmax(dim=1)
        return (logits.argmax(dim=1) == target).float().mean() * 100

    def predict(
            self,
            feats: Features,
            data_samples: Optional[Sequence[Optional[DataSample]]] = None
    ) -> List[DataSample]:
        """Scores and labels, written into the given samples (or new ones).

        Args:
            feats: Backbone / neck features.
            data_samples (Sequence[DataSample], optional): Samples to fill;
                their ``gt_label`` is kept. New ones are made when None.

        Returns:
            list[DataSample]: With ``pred_score`` (softmax, or sigmoid when
            multi-label) and ``pred_label`` (argmax, or the indices whose
            score reaches ``thr``).
        """
        logits = self(feats)
        return self.logits_to_samples(logits, data_samples)

    def logits_to_samples(
            self,
            logits: Tensor,
            data_samples: Optional[Sequence[Optional[DataSample]]] = None
    ) -> List[DataSample]:
        """Turn logits into filled :class:`DataSample` objects."""
        scores = logits.sigmoid() if self.multi_label else logits.softmax(1)
        scores = scores.detach()
        if data_samples is None:
            data_samples = [None] * scores.shape[0]
        out = []
        for score, sample in zip(scores, data_samples):
            sample = DataSample() if sample is None else sample
            sample.set_pred_score(score)
            if self.multi_label:
                sample.set_pred_label(torch.nonzero(score >= self.thr)[:, 0])
            else:
                sample.set_pred_label(score.argmax().item())
            sample.set_metainfo(dict(num_classes=self.num_classes))
            out.append(sample)
        return out


@MODELS.register_module()
class LinearClsHead(ClsHead):
    """A linear layer on the concatenated features (the linear probe).

    Weights start from ``N(0, 0.01)``, biases from zero. See :class:`ClsHead`
    for the arguments.
    """

    def __init__(self, num_classes: int, in_channels: int, **kwargs):
        super().__init__(num_classes, in_channels, **kwargs)
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, feats: Features) -> Tensor:
        """Logits ``(B, num_classes)``."""
        return self.fc(self.pre_logits(feats))


@MODELS.register_module()
class MultiLabelLinearClsHead(LinearClsHead):
    """:class:`LinearClsHead` with ``multi_label=True`` (sigmoid, BCE).

    ``loss=dict(type='CrossEntropyLoss', use_sigmoid=True, pos_weight=...)``
    weights positives per class; ``thr`` sets the prediction threshold.
    """

    def __init__(self, num_classes: int, in_channels: int, **kwargs):
        kwargs.setdefault('multi_label', True)
        super().__init__(num_classes, in_channels, **kwargs)


@MODELS.register_module()
class MLPClsHead(ClsHead):
    """Linear -> GELU -> dropout -> linear on the concatenated features.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the concatenated features.
        hidden_channels (int): Hidden width. Defaults to 1024.
        dropout (float): Dropout before the last layer. Defaults to 0.
        **kwargs: ``loss``, ``multi_label``, ``thr``, ``init_cfg`` of
            :class:`ClsHead`.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 hidden_channels: int = 1024,
                 dropout: float = 0.0,
                 **kwargs):
        super().__init__(num_classes, in_channels, **kwargs)
        self.hidden_channels = hidden_channels
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_channels, num_classes)
        for layer in (self.fc1, self.fc2):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, feats: Features) -> Tensor:
        """Logits ``(B, num_classes)``."""
        return self.fc2(self.dropout(self.act(self.fc1(self.pre_logits(feats)))))
