"""The generated texture segmentation set: classes differ by texture only."""
import numpy as np
import pytest

from dinov3_mm.datasets.synthetic_texture import (TEXTURE_CLASSES,
                                                  draw_texture_seg_sample,
                                                  texture_pattern)


def test_every_region_uses_the_two_background_colours():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(12):
        image, mask = draw_texture_seg_sample(48, rng, noise=0)
        colours = np.unique(image.reshape(-1, 3), axis=0)
        assert len(colours) == 2  # one pair for background and objects
        for label in np.unique(mask):
            region = image[mask == label].reshape(-1, 3)
            assert len(np.unique(region, axis=0)) == 2
        seen.update(np.unique(mask).tolist())
    assert seen == set(range(len(TEXTURE_CLASSES)))


def test_samples_are_reproducible_and_noisy_by_default():
    a = draw_texture_seg_sample(32, np.random.default_rng(3))
    b = draw_texture_seg_sample(32, np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len(np.unique(a[0].reshape(-1, 3), axis=0)) > 2


def test_textures_are_balanced_and_unknown_names_rejected():
    rng = np.random.default_rng(0)
    for kind in TEXTURE_CLASSES:
        fill = texture_pattern(kind, 64, rng).mean()
        assert 0.05 < fill < 0.95, kind
    with pytest.raises(ValueError, match='Unknown texture'):
        texture_pattern('plaid', 8, rng)
