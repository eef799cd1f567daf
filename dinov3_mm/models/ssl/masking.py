"""iBOT block masking of the student's global crops (official algorithm).

:class:`BlockMaskGenerator` is the BEiT/iBOT block-wise masking of
``dinov3/data/masking.py``: rectangles of random area and aspect ratio are
added until the requested number of patches is masked (or ten placements in
a row add nothing), then random single patches top the mask up to exactly
that number. :func:`sample_masks` builds the masks of a batch as the official
``collate_data_and_cast``.

Randomness comes from numpy: the global RNG (``np.random``) by default, so
mmengine's seeding (``randomness=dict(seed=...)``, which also seeds every
dataloader worker differently) makes the masks reproducible; or pass an
``np.random.Generator`` (or ``np.random.RandomState``) as ``rng``.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

RNG = Optional[Union[np.random.Generator, np.random.RandomState]]


def _rng(rng: RNG):
    return np.random if rng is None else rng


def _uniform(rng: RNG, low: float, high: float) -> float:
    # low + (high - low) * U[0, 1), also when high < low (as random.uniform).
    return low + (high - low) * float(_rng(rng).random())


def _randint(rng: RNG, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]`` (inclusive, as random.randint)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high + 1))
    return int(_rng(rng).randint(low, high + 1))


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    size = tuple(size)
    if len(size) != 2 or not all(
            isinstance(s, (int, np.integer)) and s >= 1 for s in size):
        raise ValueError(f'{name} must be a positive int or (h, w), got '
                         f'{size!r}.')
    return int(size[0]), int(size[1])


class BlockMaskGenerator:
    """Block-wise (iBOT/BEiT) mask of a ``(h, w)`` patch grid.

    One call masks exactly ``num_masking_patches`` patches: it repeatedly
    draws a rectangle of area ``U(min_num_patches, max_block)`` and aspect
    ratio ``exp(U(log min_aspect, log max_aspect))``, where ``max_block`` is
    the smaller of the patches still to mask and ``max_num_patches``; a
    rectangle strictly smaller than the grid is placed uniformly and kept if
    it adds between 1 and ``max_block`` new patches (10 tries per block). When
    a block cannot be placed, the remaining patches are chosen uniformly at
    random among the unmasked ones.

    Args:
        input_size (int | tuple[int, int]): Patch grid ``(h, w)``.
        num_masking_patches (int, optional): Only used as the default of
            ``max_num_patches`` (official behaviour).
        min_num_patches (int): Smallest block area drawn. Defaults to 4.
        max_num_patches (float, optional): Largest block area drawn. Defaults
            to ``num_masking_patches``, or the whole grid when both are None.
            The official training uses half the grid.
        min_aspect (float): Smallest block aspect ratio (h / w). Defaults to
            0.3.
        max_aspect (float, optional): Largest aspect ratio. Defaults to
            ``1 / min_aspect``.

    Example:
        >>> gen = BlockMaskGenerator(14, max_num_patches=98)
        >>> mask = gen(50)
        >>> mask.shape, int(mask.sum())
        ((14, 14), 50)
    """

    def __init__(self,
                 input_size: Union[int, Sequence[int]],
                 num_masking_patches: Optional[int] = None,
                 min_num_patches: int = 4,
                 max_num_patches: Optional[float] = None,
                 min_aspect: float = 0.3,
                 max_aspect: Optional[float] = None):
        self.height, self.width = _pair(input_size, 'input_size')
        self.num_patches = self.height * self.width
        self.num_masking_patches = num_masking_patches
        if min_num_patches < 0:
            raise ValueError('min_num_patches must be >= 0, got '
                             f'{min_num_patches}.')
        self.min_num_patches = min_num_patches
        if max_num_patches is None:
            max_num_patches = (num_masking_patches if num_masking_patches
                               is not None else self.num_patches)
        if max_num_patches <= 0:
            raise ValueError('max_num_patches must be > 0, got '
                             f'{max_num_patches}.')
        self.max_num_patches = max_num_patches
        if not min_aspect > 0:
            raise ValueError(f'min_aspect must be > 0, got {min_aspect}.')
        max_aspect = max_aspect or 1.0 / min_aspect
        if max_aspect < min_aspect:
            raise ValueError(f'max_aspect ({max_aspect}) must be >= '
                             f'min_aspect ({min_aspect}).')
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(input_size=({self.height}, '
                f'{self.width}), block area [{self.min_num_patches}, '
                f'{self.max_num_patches}], log aspect '
                f'[{self.log_aspect_ratio[0]:.3f}, '
                f'{self.log_aspect_ratio[1]:.3f}])')

    def get_shape(self) -> Tuple[int, int]:
        """The grid ``(h, w)``."""
        return self.height, self.width

    def _add_block(self, mask: np.ndarray, max_mask_patches: float,
                   rng: RNG) -> int:
        """Try up to 10 times to add one block; return the patches added."""
        delta = 0
        for _ in range(10):
            target_area = _uniform(rng, self.min_num_patches,
                                   max_mask_patches)
            aspect_ratio = math.exp(_uniform(rng, *self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = _randint(rng, 0, self.height - h)
                left = _randint(rng, 0, self.width - w)
                block = mask[top:top + h, left:left + w]
                new = h * w - int(block.sum())
                if 0 < new <= max_mask_patches:
                    block[...] = True
                    delta += new
                if delta > 0:
                    break
        return delta

    def __call__(self, num_masking_patches: int = 0,
                 rng: RNG = None) -> np.ndarray:
        """Draw one mask.

        Args:
            num_masking_patches (int): Patches to mask, in ``[0, h * w]``.
                Defaults to 0 (an empty mask).
            rng (np.random.Generator | np.random.RandomState, optional):
                Random source; the global ``np.random`` when None.

        Returns:
            np.ndarray: ``(h, w)`` bool, exactly ``num_masking_patches``
            True.
        """
        num_masking_patches = int(num_masking_patches)
        if not 0 <= num_masking_patches <= self.num_patches:
            raise ValueError(
                f'num_masking_patches must be in [0, {self.num_patches}], '
                f'got {num_masking_patches}.')
        mask = np.zeros(self.get_shape(), dtype=bool)
        mask_count = 0
        while mask_count < num_masking_patches:
            max_mask_patches = min(num_masking_patches - mask_count,
                                   self.max_num_patches)
            delta = self._add_block(mask, max_mask_patches, rng)
            if delta == 0:
                break
            mask_count += delta
        return self.complete_mask_randomly(mask, num_masking_patches, rng)

    def complete_mask_randomly(self,
                               mask: np.ndarray,
                               num_masking_patches: int,
                               rng: RNG = None) -> np.ndarray:
        """Mask random extra patches until ``num_masking_patches`` are set."""
        flat = mask.flatten()
        missing = num_masking_patches - int(flat.sum())
        if missing > 0:
            free = np.flatnonzero(~flat)
            flat[_rng(rng).choice(free, size=missing, replace=False)] = True
        return flat.reshape(mask.shape)


def sample_masks(n_images: int,
                 grid_size: Union[int, Sequence[int]],
                 mask_ratio_min_max: Tuple[float, float] = (0.1, 0.5),
                 mask_probability: float = 0.5,
                 rng: RNG = None,
                 mask_generator: Optional[BlockMaskGenerator] = None
                 ) -> torch.Tensor:
    """iBOT masks of a batch of student global crops (official collate).

    ``n_masked = int(n_images * mask_probability)`` images get a block mask;
    mask ``i`` (``0 <= i < n_masked``) covers ``int(h * w * r_i)`` patches
    with ``r_i = linspace(min, max, n_masked + 1)[i + 1]`` (float32, as the
    official ``torch.linspace``), i.e. the upper edge of the ``i``-th of
    ``n_masked`` equal sub-intervals of ``mask_ratio_min_max`` (no random
    ratio within a sub-interval). The other images get empty masks, and the
    list is shuffled so that the masked images are at random positions.

    Args:
        n_images (int): Number of masks, i.e. ``n_global_crops *
            batch_size``; row ``j`` belongs to the ``j``-th image of the
            crop-major flattened global crops.
        grid_size (int | tuple[int, int]): Patch grid ``(h, w)`` of a global
            crop (e.g. 224 // 16 = 14).
        mask_ratio_min_max (tuple[float, float]): Ratio range, ``0 <= min <
            max <= 1``. Defaults to (0.1, 0.5).
        mask_probability (float): Fraction of images masked. Defaults to
            0.5.
        rng (np.random.Generator | np.random.RandomState, optional): Random
            source for block placement and shuffling; the global
            ``np.random`` when None.
        mask_generator (BlockMaskGenerator, optional): Generator to use;
            defaults to ``BlockMaskGenerator(grid_size,
            max_num_patches=0.5 * h * w)`` as the official training.

    Returns:
        torch.Tensor: ``(n_images, h * w)`` bool, True = masked.
    """
    height, width = _pair(grid_size, 'grid_size')
    num_patches = height * width
    if isinstance(n_images, bool) or not isinstance(
            n_images, (int, np.integer)) or n_images < 0:
        raise ValueError(f'n_images must be an int >= 0, got {n_images!r}.')
    low, high = mask_ratio_min_max
    if not 0.0 <= low < high <= 1.0:
        raise ValueError('mask_ratio_min_max must satisfy 0 <= min < max <= '
                         f'1, got {tuple(mask_ratio_min_max)}.')
    if not 0.0 <= mask_probability <= 1.0:
        raise ValueError('mask_probability must be in [0, 1], got '
                         f'{mask_probability}.')
    if mask_generator is None:
        mask_generator = BlockMaskGenerator(
            (height, width), max_num_patches=0.5 * num_patches)
    elif mask_generator.get_shape() != (height, width):
        raise ValueError(f'mask_generator grid {mask_generator.get_shape()} '
                         f'differs from grid_size {(height, width)}.')

    n_masked = int(n_images * mask_probability)
    ratios = torch.linspace(low, high, n_masked + 1)
    masks = [
        mask_generator(int(num_patches * ratios[i + 1]), rng=rng)
        for i in range(n_masked)
    ]
    masks += [np.zeros((height, width), dtype=bool)] * (n_images - n_masked)
    if n_images == 0:
        return torch.zeros((0, num_patches), dtype=torch.bool)
    order = _rng(rng).permutation(n_images)
    stacked = np.stack([masks[i] for i in order]).reshape(n_images, -1)
    return torch.from_numpy(stacked)
