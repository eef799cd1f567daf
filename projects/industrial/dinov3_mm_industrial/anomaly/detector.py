"""PatchCore-style anomaly detection on frozen DINOv3 patch features.

Call graph::

    fit(batches of normal images)
      patch_features -> flatten to (N * h * w, C) -> subsample_bank -> bank
    predict(images)
      patch_features -> nearest_neighbour_distance to the bank -> (B, h, w)
      -> bilinear upsampling to the input size -> gaussian_blur -> maps
      -> image score: max (or mean of the top fraction) of each map
"""
from typing import Dict, Iterable, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from dinov3_mm.models import resolve_mean_std
from dinov3_mm.registry import MODELS
from .memory_bank import (SUBSAMPLE_METHODS, nearest_neighbour_distance,
                          subsample_bank)
from .smoothing import gaussian_blur

SCORE_MODES = ('max', 'topk')


@MODELS.register_module()
class DINOv3PatchCore(BaseModule):
    """Label-free anomaly detector: nearest normal patch in a memory bank.

    The backbone is frozen and always in eval mode. Its feature maps
    (``out_type='featmap'``, one per ``out_indices`` entry) are brought to
    the finest grid, concatenated along channels and averaged over a
    ``pool_size`` neighbourhood (PatchCore's local aggregation).

    Args:
        backbone (dict): Backbone config, e.g. ``dict(type='DINOv3ViT',
            arch='small', out_type='featmap', out_indices=(-4, -1))``. Must
            return ``(B, C, h, w)`` maps. Pretrained weights go in its
            ``init_cfg`` and are loaded by :meth:`init_weights`.
        normalization (str, optional): Mean/std preset of the weights
            (``'lvd1689m'`` or ``'sat493m'``). Defaults to ``'lvd1689m'``.
        mean (Sequence[float], optional): RGB mean on the 0-255 scale;
            overrides ``normalization`` together with ``std``.
        std (Sequence[float], optional): RGB std on the 0-255 scale.
        pool_size (int): Odd side of the feature averaging window; 1 turns
            it off. Defaults to 3.
        l2_normalize (bool): Scale each patch feature to unit length before
            it is stored or compared. Defaults to False.
        subsample (dict, optional): ``method`` (``'none'``, ``'random'``,
            ``'greedy'``), ``ratio`` in ``(0, 1]``, ``proj_dim`` (greedy)
            and ``seed``. Defaults to ``dict(method='none')``.
        sigma (float): Gaussian smoothing of the upsampled maps, in input
            pixels; 0 turns it off. Defaults to 4.
        score_mode (str): ``'max'`` of the map, or ``'topk'``: the mean of
            its ``topk_ratio`` highest pixels. Defaults to ``'max'``.
        topk_ratio (float): Fraction of pixels of ``'topk'``. Defaults to
            0.01.
        max_pairs (int): Largest block of distances computed at once.
            Defaults to ``2**22``.
        init_cfg (dict, optional): mmengine init config of this module.
    """

    def __init__(self,
                 backbone: dict,
                 normalization: Optional[str] = 'lvd1689m',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pool_size: int = 3,
                 l2_normalize: bool = False,
                 subsample: Optional[dict] = None,
                 sigma: float = 4.0,
                 score_mode: str = 'max',
                 topk_ratio: float = 0.01,
                 max_pairs: int = 2**22,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        out_type = getattr(self.backbone, 'out_type', 'featmap')
        if out_type != 'featmap':
            raise ValueError(
                "DINOv3PatchCore needs patch feature maps: set the "
                f"backbone's out_type='featmap' (got {out_type!r}).")
        self.backbone.requires_grad_(False)
        mean, std = resolve_mean_std(normalization, mean, std)
        if mean is None:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1),
                             persistent=False)
        if pool_size < 1 or pool_size % 2 == 0:
            raise ValueError(f'pool_size must be a positive odd number, got '
                             f'{pool_size}.')
        self.pool_size = pool_size
        self.l2_normalize = l2_normalize
        self.subsample = dict(method='none', ratio=1.0, proj_dim=128, seed=0)
        unknown = sorted(set(subsample or {}) - set(self.subsample))
        if unknown:
            raise ValueError(f'Unknown subsample keys {unknown}; expected '
                             f'{sorted(self.subsample)}.')
        self.subsample.update(subsample or {})
        if self.subsample['method'] not in SUBSAMPLE_METHODS:
            raise ValueError(f"subsample method {self.subsample['method']!r} "
                             f'is not one of {SUBSAMPLE_METHODS}.')
        if sigma < 0:
            raise ValueError(f'sigma must be >= 0, got {sigma}.')
        self.sigma = sigma
        if score_mode not in SCORE_MODES:
            raise ValueError(f'score_mode={score_mode!r}; expected one of '
                             f'{SCORE_MODES}.')
        if not 0 < topk_ratio <= 1:
            raise ValueError(
                f'topk_ratio must be in (0, 1], got {topk_ratio}.')
        self.score_mode = score_mode
        self.topk_ratio = topk_ratio
        self.max_pairs = max_pairs
        self.register_buffer('memory_bank', torch.zeros(0, 0))
        self.train(False)

    # ------------------------------------------------------------ plumbing
    def init_weights(self) -> None:
        """Load the backbone's pretrained weights (its ``init_cfg``)."""
        self.backbone.init_weights()
        self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> 'DINOv3PatchCore':
        """The backbone stays in eval mode: nothing here is trained."""
        super().train(mode)
        self.backbone.eval()
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'memory_bank'
        if key in state_dict:  # the bank's size is known only once fitted
            self.memory_bank = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def device(self) -> torch.device:
        """Device of the backbone's parameters."""
        return next(self.backbone.parameters()).device

    @property
    def is_fitted(self) -> bool:
        """Whether the memory bank holds normal features."""
        return self.memory_bank.numel() > 0

    # ------------------------------------------------------------ features
    def preprocess(self, images: Tensor) -> Tensor:
        """RGB ``(B, 3, H, W)`` images on the 0-255 scale to network input."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'Expected RGB images (B, 3, H, W), got shape '
                             f'{tuple(images.shape)}.')
        images = images.to(self.device, torch.float32)
        return (images - self.mean) / self.std

    @torch.no_grad()
    def patch_features(self, images: Tensor) -> Tensor:
        """Locally aggregated patch features ``(B, C, h, w)`` of the images.

        Args:
            images (Tensor): RGB ``(B, 3, H, W)`` on the 0-255 scale; ``H``
                and ``W`` multiples of the patch size.
        """
        maps = self.backbone(self.preprocess(images))
        if isinstance(maps, Tensor):
            maps = (maps, )
        for m in maps:
            if m.ndim != 4:
                raise ValueError('DINOv3PatchCore needs (B, C, h, w) feature '
                                 f'maps, got shape {tuple(m.shape)}.')
        size = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
        maps = [
            m if m.shape[-2:] == size else F.interpolate(
                m, size=tuple(size), mode='bilinear', align_corners=False)
            for m in maps
        ]
        feats = torch.cat([m.float() for m in maps], dim=1)
        if self.pool_size > 1:
            feats = F.avg_pool2d(feats, self.pool_size, stride=1,
                                 padding=self.pool_size // 2,
                                 count_include_pad=False)
        if self.l2_normalize:
            feats = F.normalize(feats, dim=1)
        return feats

    @staticmethod
    def _flatten(feats: Tensor) -> Tensor:
        return feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])

    # ------------------------------------------------------------ fitting
    @torch.no_grad()
    def fit(self, batches: Iterable[Tensor]) -> Dict[str, int]:
        """Build the memory bank from batches of normal images.

        Args:
            batches (Iterable[Tensor]): RGB ``(B, 3, H, W)`` batches on the
                0-255 scale, all defect-free.

        Returns:
            dict: ``num_images``, ``num_patches`` (before subsampling) and
            ``bank_size``.
        """
        chunks, num_images = [], 0
        for images in batches:
            chunks.append(self._flatten(self.patch_features(images)))
            num_images += images.shape[0]
        if not chunks:
            raise ValueError('DINOv3PatchCore.fit got no normal images.')
        features = torch.cat(chunks)
        bank = subsample_bank(features, **self.subsample)
        self.memory_bank = bank.contiguous()
        stats = dict(num_images=num_images, num_patches=features.shape[0],
                     bank_size=bank.shape[0])
        print_log(f'DINOv3PatchCore memory bank: {stats}', logger='current')
        return stats

    # ------------------------------------------------------------ scoring
    @torch.no_grad()
    def patch_scores(self, images: Tensor) -> Tensor:
        """Nearest-neighbour distance of every patch, ``(B, h, w)``."""
        if not self.is_fitted:
            raise RuntimeError('DINOv3PatchCore has no memory bank; call '
                               'fit() on normal images first.')
        feats = self.patch_features(images)
        b, _, h, w = feats.shape
        dist = nearest_neighbour_distance(self._flatten(feats),
                                          self.memory_bank.to(feats.device),
                                          self.max_pairs)
        return dist.view(b, h, w)

    def image_scores(self, maps: Tensor) -> Tensor:
        """Image scores ``(B,)`` of ``(B, H, W)`` anomaly maps."""
        flat = maps.flatten(1)
        if self.score_mode == 'max':
            return flat.max(dim=1).values
        k = max(1, int(round(self.topk_ratio * flat.shape[1])))
        return flat.topk(k, dim=1).values.mean(dim=1)

    @torch.no_grad()
    def predict(self, images: Tensor) -> Dict[str, Tensor]:
        """Anomaly maps at the input size and image scores.

        Args:
            images (Tensor): RGB ``(B, 3, H, W)`` on the 0-255 scale.

        Returns:
            dict: ``maps`` ``(B, H, W)`` (upsampled, smoothed),
            ``patch_scores`` ``(B, h, w)`` and ``scores`` ``(B,)``; float32
            on the CPU.
        """
        patch = self.patch_scores(images)
        maps = F.interpolate(patch.unsqueeze(1), size=images.shape[-2:],
                             mode='bilinear', align_corners=False)[:, 0]
        maps = gaussian_blur(maps, self.sigma)
        return dict(maps=maps.cpu(), patch_scores=patch.cpu(),
                    scores=self.image_scores(maps).cpu())

    def forward(self, images: Tensor) -> Dict[str, Tensor]:
        """Same as :meth:`predict`."""
        return self.predict(images)
