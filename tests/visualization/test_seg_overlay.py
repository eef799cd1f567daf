"""Coloured masks, overlays and comparison panels of segmentation."""
import numpy as np
import pytest

from dinov3_mm.datasets.seg_folder import default_palette as dataset_palette
from dinov3_mm.visualization.seg_overlay import (ERROR_COLOR, HEADER_HEIGHT,
                                                 IGNORED_ERROR_COLOR,
                                                 LEGEND_ROW_HEIGHT, TILE_GAP,
                                                 colorize_mask, compare_panel,
                                                 default_palette, error_map,
                                                 overlay_mask, tile_scale)

PALETTE = [[0, 0, 0], [200, 0, 0], [0, 100, 0], [10, 20, 250]]


def test_colorize_mask_colours_and_ignore():
    mask = np.array([[0, 1], [2, 3], [255, 7]])
    rgb = colorize_mask(mask, PALETTE)
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 2, 3)
    assert rgb[0, 1].tolist() == [200, 0, 0]
    assert rgb[1, 0].tolist() == [0, 100, 0]
    assert rgb[1, 1].tolist() == [10, 20, 250]
    # ignore index and labels without a colour are black
    assert rgb[2, 0].tolist() == [0, 0, 0] and rgb[2, 1].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match='index array'):
        colorize_mask(np.zeros((2, 2, 3)), PALETTE)


def test_default_palette_is_fixed_and_matches_datasets():
    assert default_palette(5) == default_palette(5) == dataset_palette(5)
    assert len(default_palette(40)) == 40
    assert len({tuple(c) for c in default_palette(40)}) == 40
    # no palette: one sized to the mask
    rgb = colorize_mask(np.array([[0, 2]]))
    assert rgb[0, 1].tolist() == default_palette(3)[2]


def test_overlay_blends_labelled_pixels_only():
    image = np.full((2, 2, 3), 100, np.uint8)
    mask = np.array([[1, 2], [255, 0]])
    out = overlay_mask(image, mask, PALETTE, alpha=0.25)
    # round(0.75 * 100 + 0.25 * colour)
    assert out[0, 0].tolist() == [125, 75, 75]
    assert out[0, 1].tolist() == [75, 100, 75]
    assert out[1, 0].tolist() == [100, 100, 100]  # ignored: untouched
    assert out[1, 1].tolist() == [75, 75, 75]
    assert np.array_equal(overlay_mask(image, mask, PALETTE, alpha=0), image)
    full = overlay_mask(image, mask, PALETTE, alpha=1)
    assert full[0, 0].tolist() == [200, 0, 0]
    with pytest.raises(ValueError, match='alpha'):
        overlay_mask(image, mask, PALETTE, alpha=1.5)
    with pytest.raises(ValueError, match='HxW'):
        overlay_mask(image, mask[:1], PALETTE)


def test_error_map_colours():
    gt = np.array([[0, 1], [255, 2]])
    pred = np.array([[0, 2], [1, 2]])
    err = error_map(gt, pred)
    assert err[0, 0].tolist() == [0, 0, 0]
    assert err[0, 1].tolist() == list(ERROR_COLOR) == [255, 0, 0]
    assert err[1, 0].tolist() == list(IGNORED_ERROR_COLOR)
    assert err[1, 1].tolist() == [0, 0, 0]


def test_compare_panel_layout_and_tiles():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    gt = rng.integers(0, 4, (32, 48))
    gt[:4] = 255
    pred = rng.integers(0, 4, (32, 48))
    classes = ['background', 'circle', 'square', 'triangle']
    panel = compare_panel(image, gt, pred, PALETTE, classes)
    th, tw = tile_scale(32, 48)
    assert (th, tw) == (96, 144)  # enlarged x3 to reach 128 px
    assert panel.dtype == np.uint8
    assert panel.shape[1] == 4 * tw + 3 * TILE_GAP
    legend_rows = (panel.shape[0] - HEADER_HEIGHT - th) // LEGEND_ROW_HEIGHT
    assert legend_rows >= 1
    assert panel.shape[0] == HEADER_HEIGHT + th + legend_rows * \
        LEGEND_ROW_HEIGHT
    tiles = [panel[HEADER_HEIGHT:HEADER_HEIGHT + th,
                   i * (tw + TILE_GAP):i * (tw + TILE_GAP) + tw]
             for i in range(4)]
    up = np.repeat(np.repeat(image, 3, 0), 3, 1)
    assert np.array_equal(tiles[0], up)
    up_gt = np.repeat(np.repeat(gt, 3, 0), 3, 1)
    up_pred = np.repeat(np.repeat(pred, 3, 0), 3, 1)
    assert np.array_equal(tiles[1], overlay_mask(up, up_gt, PALETTE))
    assert np.array_equal(tiles[2], overlay_mask(up, up_pred, PALETTE))
    assert np.array_equal(tiles[3], error_map(up_gt, up_pred))
    # the ignored rows are grey in the error map
    assert (tiles[3][:12] == IGNORED_ERROR_COLOR).all()
    # the legend shows each class colour
    legend = panel[HEADER_HEIGHT + th:]
    for colour in PALETTE[1:]:
        assert (legend == colour).all(-1).any()


def test_compare_panel_without_gt_and_large_images():
    image = np.zeros((600, 1200, 3), np.uint8)
    pred = np.zeros((600, 1200), np.int64)
    panel = compare_panel(image, None, pred, PALETTE, ['a', 'b', 'c', 'd'])
    th, tw = tile_scale(600, 1200)
    assert (th, tw) == (256, 512)
    assert panel.shape[1] == 2 * tw + TILE_GAP
    assert panel.shape[0] > HEADER_HEIGHT + th
    with pytest.raises(ValueError, match='HxW'):
        compare_panel(image, None, pred[:10], PALETTE)
