"""iBOT block masking: exact counts, blockiness, batch ratios, seeding."""
import numpy as np
import pytest
import torch

from dinov3_mm.models.ssl.masking import BlockMaskGenerator, sample_masks


def largest_component(mask):
    """Size of the largest 4-connected region of True cells."""
    seen = np.zeros_like(mask)
    height, width = mask.shape
    best = 0
    for i in range(height):
        for j in range(width):
            if not mask[i, j] or seen[i, j]:
                continue
            stack, size = [(i, j)], 0
            seen[i, j] = True
            while stack:
                a, b = stack.pop()
                size += 1
                for x, y in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):
                    if (0 <= x < height and 0 <= y < width and mask[x, y]
                            and not seen[x, y]):
                        seen[x, y] = True
                        stack.append((x, y))
            best = max(best, size)
    return best


def perimeter(mask):
    """Number of (masked, unmasked) 4-neighbour pairs."""
    m = mask.astype(int)
    return int(np.abs(np.diff(m, axis=0)).sum() +
               np.abs(np.diff(m, axis=1)).sum())


@pytest.mark.parametrize('num', [0, 1, 4, 20, 58, 98, 150, 196])
def test_exact_number_of_masked_patches(num):
    np.random.seed(0)
    gen = BlockMaskGenerator(14, max_num_patches=98)
    mask = gen(num)
    assert mask.shape == (14, 14) and mask.dtype == bool
    assert int(mask.sum()) == num


def test_rectangular_grid_and_generator_rng():
    gen = BlockMaskGenerator((6, 10), max_num_patches=30)
    assert gen.get_shape() == (6, 10)
    mask = gen(25, rng=np.random.default_rng(0))
    assert mask.shape == (6, 10) and int(mask.sum()) == 25
    mask = gen(25, rng=np.random.RandomState(0))
    assert int(mask.sum()) == 25
    with pytest.raises(ValueError, match='num_masking_patches'):
        gen(61)


def test_masks_are_blocky():
    np.random.seed(1)
    gen = BlockMaskGenerator(14, max_num_patches=98)
    masks = [gen(98) for _ in range(20)]
    # 98 random patches out of 196: ~182 boundary pairs, largest region ~34.
    assert np.mean([perimeter(m) for m in masks]) < 100
    assert np.mean([largest_component(m) for m in masks]) > 60
    assert min(largest_component(m) for m in masks) >= 20


def test_reproducible_under_numpy_seed_and_generator():
    np.random.seed(123)
    first = sample_masks(8, 14)
    np.random.seed(123)
    second = sample_masks(8, 14)
    assert torch.equal(first, second)
    third = sample_masks(8, 14)  # the global RNG moved on
    assert not torch.equal(first, third)
    a = sample_masks(8, 14, rng=np.random.default_rng(5))
    b = sample_masks(8, 14, rng=np.random.default_rng(5))
    assert torch.equal(a, b)


def test_sample_masks_ratios_and_empty_rest():
    np.random.seed(0)
    masks = sample_masks(8, 14, mask_ratio_min_max=(0.1, 0.5),
                         mask_probability=0.5)
    assert masks.shape == (8, 196) and masks.dtype == torch.bool
    counts = masks.sum(dim=1).tolist()
    # 4 masked images, ratios = upper edges of 4 equal bins of [0.1, 0.5]:
    # 0.2, 0.3, 0.4, 0.5 -> int(196 * r) (float32 0.3 * 196 = 58.8...).
    assert sorted(c for c in counts if c) == [39, 58, 78, 98]
    assert counts.count(0) == 4
    # Each masked row is a block mask of the 14x14 grid.
    for row in masks[masks.any(dim=1)]:
        assert largest_component(row.view(14, 14).numpy()) >= 4


def test_sample_masks_shuffles_masked_images():
    np.random.seed(0)
    firsts = set()
    for _ in range(10):
        masks = sample_masks(6, 8, mask_probability=0.5)
        masked_rows = tuple(masks.any(dim=1).nonzero().flatten().tolist())
        assert len(masked_rows) == 3
        firsts.add(masked_rows)
    assert len(firsts) > 1  # not always the first three images


def test_sample_masks_edge_cases_and_errors():
    assert sample_masks(1, 14).sum() == 0  # int(1 * 0.5) = 0 masked
    assert sample_masks(0, 14).shape == (0, 196)
    full = sample_masks(4, (4, 6), mask_ratio_min_max=(0.0, 1.0),
                        mask_probability=1.0)
    assert sorted(full.sum(dim=1).tolist()) == [6, 12, 18, 24]
    with pytest.raises(ValueError, match='mask_ratio_min_max'):
        sample_masks(4, 14, mask_ratio_min_max=(0.5, 0.1))
    with pytest.raises(ValueError, match='mask_probability'):
        sample_masks(4, 14, mask_probability=1.5)
    with pytest.raises(ValueError, match='grid'):
        sample_masks(4, 14, mask_generator=BlockMaskGenerator(12))
    with pytest.raises(ValueError, match='input_size'):
        BlockMaskGenerator((0, 4))
