"""Classification data preprocessor and batch augmentations (mixup, cutmix)."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import ImgDataPreprocessor
from torch import Tensor

from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample
from ..normalization import resolve_mean_std


@MODELS.register_module()
class Mixup:
    """Mix each image with another of the batch (`mixup
    <https://arxiv.org/abs/1710.09412>`_).

    ``x = lam * x + (1 - lam) * x[perm]``, same for the targets, with
    ``lam ~ Beta(alpha, alpha)`` drawn from torch's global generator.

    Args:
        alpha (float): Beta distribution parameter. Defaults to 0.8.
    """

    def __init__(self, alpha: float = 0.8):
        if alpha <= 0:
            raise ValueError(f'Mixup alpha must be positive, got {alpha}.')
        self.alpha = alpha

    def _lam(self) -> float:
        return torch.distributions.Beta(self.alpha, self.alpha).sample().item()

    def __call__(self, inputs: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor]:
        """Mixed ``(B, C, H, W)`` inputs and ``(B, num_classes)`` targets."""
        lam = self._lam()
        perm = torch.randperm(inputs.shape[0], device=inputs.device)
        inputs = lam * inputs + (1 - lam) * inputs[perm]
        return inputs, lam * scores + (1 - lam) * scores[perm]


@MODELS.register_module()
class CutMix(Mixup):
    """Paste a random box of another image of the batch (`CutMix
    <https://arxiv.org/abs/1905.04899>`_).

    The box covers about ``1 - lam`` of the image (``lam ~ Beta(alpha,
    alpha)``), clipped at the borders; the targets are mixed by the area
    actually pasted.

    Args:
        alpha (float): Beta distribution parameter. Defaults to 1.0.
    """

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha)

    def __call__(self, inputs: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor]:
        """Cut-mixed ``(B, C, H, W)`` inputs and ``(B, num_classes)`` targets."""
        lam = self._lam()
        perm = torch.randperm(inputs.shape[0], device=inputs.device)
        h, w = inputs.shape[-2:]
        ratio = math.sqrt(1 - lam)
        cy, cx = torch.randint(h, ()).item(), torch.randint(w, ()).item()
        y1, y2 = max(cy - int(h * ratio) // 2, 0), min(cy + int(h * ratio) // 2, h)
        x1, x2 = max(cx - int(w * ratio) // 2, 0), min(cx + int(w * ratio) // 2, w)
        inputs = inputs.clone()
        inputs[..., y1:y2, x1:x2] = inputs[perm][..., y1:y2, x1:x2]
        lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
        return inputs, lam * scores + (1 - lam) * scores[perm]


class RandomBatchAugment:
    """Apply one of several batch augmentations, chosen at random per batch.

    Args:
        augments (Sequence[dict]): Augmentation configs, e.g.
            ``[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]``.
        probs (float | Sequence[float], optional): Probability of each; when
            they sum to less than 1 the rest is "no augmentation". Defaults
            to equal probabilities summing to 1.
    """

    def __init__(self,
                 augments: Sequence[dict],
                 probs: Optional[Union[float, Sequence[float]]] = None):
        self.augments = [MODELS.build(cfg) if isinstance(cfg, dict) else cfg
                         for cfg in augments]
        if not self.augments:
            raise ValueError('batch_augments needs at least one augment.')
        if probs is None:
            probs = [1 / len(self.augments)] * len(self.augments)
        elif isinstance(probs, (int, float)):
            probs = [float(probs)]
        if len(probs) != len(self.augments) or sum(probs) > 1 + 1e-6 or min(
                probs) < 0:
            raise ValueError(f'batch_augments probs {list(probs)} must give one '
                             f'non-negative probability per augment '
                             f'({len(self.augments)}) and sum to at most 1.')
        self.probs = list(probs)

    def __call__(self, inputs: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor]:
        """Augmented inputs and targets (unchanged with the leftover chance)."""
        weights = torch.tensor(self.probs + [max(1 - sum(self.probs), 0.0)])
        index = torch.multinomial(weights, 1).item()
        if index == len(self.augments):
            return inputs, scores
        return self.augments[index](inputs, scores)


@MODELS.register_module()
class ClsDataPreprocessor(ImgDataPreprocessor):
    """Normalise, pad and stack images; mix them while training.

    Inputs are ``uint8`` CHW tensors (RGB from our pipelines) of any size;
    they are normalised with the mean and std of the pretrained weights,
    padded (bottom/right, value 0 after normalisation, i.e. the mean colour)
    to a common size that is a multiple of ``pad_size_divisor`` and stacked.

    With ``batch_augments`` and in training, hard labels become one-hot (or
    multi-hot) ``gt_score`` targets over ``num_classes`` before mixing; a
    sample's existing ``gt_score`` is used as is. Label smoothing is left to
    the loss, which applies it to these soft targets.

    Args:
        normalization (str, optional): ``'lvd1689m'`` (web weights, the
            ImageNet statistics) or ``'sat493m'`` (satellite weights).
            Ignored when ``mean`` and ``std`` are given. Defaults to
            ``'lvd1689m'``.
        mean (Sequence[float], optional): Explicit per-channel mean, 0-255.
        std (Sequence[float], optional): Explicit per-channel std, 0-255.
        pad_size_divisor (int): Pad height and width to a multiple of this
            (the patch size). Defaults to 16.
        pad_value (float): Padding value (after normalisation). Defaults to 0.
        to_rgb (bool): Swap the channel order (for BGR inputs).
            Defaults to False.
        num_classes (int, optional): Needed by ``batch_augments``.
        batch_augments (dict, optional): ``dict(augments=[dict(type='Mixup',
            alpha=0.8), dict(type='CutMix', alpha=1.0)], probs=[0.5, 0.5])``.
        non_blocking (bool): Asynchronous host-to-device copies.
            Defaults to False.
    """

    def __init__(self,
                 normalization: Optional[str] = 'lvd1689m',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pad_size_divisor: int = 16,
                 pad_value: float = 0,
                 to_rgb: bool = False,
                 num_classes: Optional[int] = None,
                 batch_augments: Optional[dict] = None,
                 non_blocking: bool = False):
        mean, std = resolve_mean_std(normalization, mean, std)
        super().__init__(
            mean=mean, std=std, pad_size_divisor=pad_size_divisor,
            pad_value=pad_value, bgr_to_rgb=to_rgb,
            non_blocking=non_blocking)
        self.normalization = normalization if mean is not None else None
        self.num_classes = num_classes
        self.batch_augments = None
        if batch_augments is not None:
            if num_classes is None:
                raise ValueError('batch_augments (mixup/cutmix) need '
                                 'num_classes in the data_preprocessor to '
                                 'build one-hot targets.')
            self.batch_augments = RandomBatchAugment(**batch_augments)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalised, padded batch; mixed with soft targets when training.

        Args:
            data (dict): ``inputs`` (list of CHW tensors or an NCHW tensor)
                and ``data_samples`` (list of :class:`DataSample` or None).
            training (bool): Apply the batch augmentations. Defaults to False.

        Returns:
            dict: ``inputs`` (float NCHW) and ``data_samples``.
        """
        data = super().forward(data, training)
        samples = data.get('data_samples')
        if training and self.batch_augments is not None and samples:
            scores = self.one_hot(samples).to(data['inputs'].device)
            data['inputs'], scores = self.batch_augments(data['inputs'], scores)
            for sample, score in zip(samples, scores):
                sample.set_gt_score(score)
        return data

    def one_hot(self, samples: List[DataSample]) -> Tensor:
        """``(B, num_classes)`` targets: ``gt_score`` or (multi-)hot labels."""
        rows = []
        for i, sample in enumerate(samples):
            if 'gt_score' in sample:
                rows.append(sample.gt_score.float().cpu())
                continue
            if 'gt_label' not in sample:
                raise ValueError(f'Sample {i} of the batch has no gt_label; '
                                 'mixup/cutmix need labels.')
            label = sample.gt_label.cpu()
            if label.numel() and (label.min() < 0
                                  or label.max() >= self.num_classes):
                raise ValueError(f'Sample {i} has label {label.tolist()} '
                                 f'outside [0, {self.num_classes}); check '
                                 'num_classes of the data_preprocessor.')
            rows.append(F.one_hot(label, self.num_classes).sum(0).clamp(max=1)
                        .float())
        return torch.stack(rows)
