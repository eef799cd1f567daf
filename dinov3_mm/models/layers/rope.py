"""Axial rotary position embedding of DINOv3."""
import math
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

_NORMALIZE_MODES = ('min', 'max', 'separate')


class RopePositionEmbedding(nn.Module):
    """Axial RoPE without learned weights, as in the official DINOv3 code.

    Patch centres are mapped to ``[-1, 1]`` (per axis with ``'separate'``),
    optionally shifted, jittered or rescaled while training, then turned into
    ``sin``/``cos`` tables of shape ``[H*W, head_dim]``. Periods follow either
    ``base ** (4 i / head_dim)`` or a geometric range between ``min_period``
    and ``max_period``. The tables are computed in ``dtype`` (fp32 by default)
    and cached per grid size outside training.

    Args:
        embed_dim (int): Token width.
        num_heads (int): Attention heads; ``embed_dim / num_heads`` must be a
            multiple of 4.
        base (float, optional): Period base. Defaults to 100.
        min_period (float, optional): Smallest period, with ``max_period``
            instead of ``base``.
        max_period (float, optional): Largest period.
        normalize_coords (str): ``'separate'``, ``'min'`` or ``'max'``.
        shift_coords (float, optional): Training-time uniform shift.
        jitter_coords (float, optional): Training-time per-axis log-uniform
            scaling in ``[1/jitter, jitter]``.
        rescale_coords (float, optional): Training-time log-uniform scaling
            shared by both axes.
        dtype (torch.dtype): Dtype of the periods and tables.
    """

    def __init__(self,
                 embed_dim: int,
                 num_heads: int,
                 base: Optional[float] = 100.0,
                 min_period: Optional[float] = None,
                 max_period: Optional[float] = None,
                 normalize_coords: str = 'separate',
                 shift_coords: Optional[float] = None,
                 jitter_coords: Optional[float] = None,
                 rescale_coords: Optional[float] = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        if embed_dim % (4 * num_heads) != 0:
            raise ValueError(
                f'RoPE needs embed_dim divisible by 4 * num_heads, got '
                f'embed_dim={embed_dim}, num_heads={num_heads}.')
        both_periods = min_period is not None and max_period is not None
        if (base is None) == (not both_periods):
            raise ValueError('RoPE takes either `base` or both `min_period` '
                             'and `max_period`, not both or neither.')
        if normalize_coords not in _NORMALIZE_MODES:
            raise ValueError(f'normalize_coords must be one of '
                             f'{_NORMALIZE_MODES}, got {normalize_coords!r}.')
        self.head_dim = embed_dim // num_heads
        self.base = base
        self.min_period = min_period
        self.max_period = max_period
        self.normalize_coords = normalize_coords
        self.shift_coords = shift_coords
        self.jitter_coords = jitter_coords
        self.rescale_coords = rescale_coords
        self.dtype = dtype
        self.register_buffer(
            'periods', torch.empty(self.head_dim // 4, dtype=dtype))
        self._cache: Dict[tuple, Tuple[Tensor, Tensor]] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Recompute the periods from the hyper-parameters."""
        n = self.head_dim // 4
        if self.base is not None:
            exponents = 2 * torch.arange(n, dtype=self.dtype) / (
                self.head_dim // 2)
            periods = self.base**exponents
        else:
            ratio = self.max_period / self.min_period
            exponents = torch.linspace(0, 1, n, dtype=self.dtype)
            periods = ratio**exponents / ratio * self.max_period
        with torch.no_grad():
            self.periods.copy_(periods.to(self.periods.device))
        self._cache.clear()

    @property
    def augments(self) -> bool:
        """Whether coordinate augmentations apply in the current mode."""
        return self.training and any(
            v is not None for v in (self.shift_coords, self.jitter_coords,
                                    self.rescale_coords))

    def forward(self, H: int, W: int) -> Tuple[Tensor, Tensor]:
        """Return ``(sin, cos)``, each ``[H*W, head_dim]``, for an H x W grid."""
        if torch.jit.is_tracing() and isinstance(H, Tensor):
            # ONNX export: the tables become graph ops of the traced grid
            # size (Range, Div, Sin, Cos), so a dynamic H/W export stays valid
            return self._tables(H, W)
        H, W = int(H), int(W)
        if self.augments:
            return self._tables(H, W)
        key = (H, W, self.periods.device, self.periods.data_ptr(),
               self.periods._version)
        if key not in self._cache:
            if len(self._cache) > 16:
                self._cache.clear()
            with torch.no_grad():
                self._cache[key] = self._tables(H, W)
        return self._cache[key]

    def _tables(self, H, W) -> Tuple[Tensor, Tensor]:
        dd = dict(device=self.periods.device, dtype=self.dtype)
        if isinstance(H, Tensor):  # traced sizes
            H, W = H.to(self.dtype), W.to(self.dtype)
            pick = {'max': torch.maximum, 'min': torch.minimum}
        else:
            pick = {'max': max, 'min': min}
        if self.normalize_coords in pick:
            denom_h = denom_w = pick[self.normalize_coords](H, W)
        else:
            denom_h, denom_w = H, W
        coords_h = (torch.arange(H, **dd) + 0.5) / denom_h
        coords_w = (torch.arange(W, **dd) + 0.5) / denom_w
        coords = torch.stack(
            torch.meshgrid(coords_h, coords_w, indexing='ij'), dim=-1)
        coords = 2.0 * coords.flatten(0, 1) - 1.0  # [HW, 2] in [-1, 1]
        if self.training:
            coords = self._augment(coords)
        angles = 2 * math.pi * coords[:, :, None] / self.periods[None, None]
        angles = angles.flatten(1, 2)
        angles = torch.cat((angles, angles), dim=-1)  # [HW, head_dim]
        return torch.sin(angles), torch.cos(angles)

    def _augment(self, coords: Tensor) -> Tensor:
        dd = dict(device=coords.device, dtype=coords.dtype)
        if self.shift_coords is not None:
            shift = torch.empty(2, **dd).uniform_(-self.shift_coords,
                                                  self.shift_coords)
            coords = coords + shift[None, :]
        if self.jitter_coords is not None:
            bound = math.log(self.jitter_coords)
            coords = coords * torch.empty(2, **dd).uniform_(-bound,
                                                            bound).exp()[None]
        if self.rescale_coords is not None:
            bound = math.log(self.rescale_coords)
            coords = coords * torch.empty(1, **dd).uniform_(-bound,
                                                            bound).exp()
        return coords

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

