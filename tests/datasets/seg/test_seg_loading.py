"""LoadSegAnnotation on real PNG masks: decoding and every bad input."""
import numpy as np
import pytest
from PIL import Image

from dinov3_mm.datasets.transforms.loading import LoadImage
from dinov3_mm.datasets.transforms.seg_loading import (LoadSegAnnotation,
                                                       rgb_to_index)

PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]
MASK = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 0, 255, 1]], np.uint8)


def _rgb_of(mask):
    out = np.zeros(mask.shape + (3, ), np.uint8)
    for i, colour in enumerate(PALETTE):
        out[mask == i] = colour
    return out


def _results(tmp_path, mask_img, img_hw=(3, 4), **extra):
    mask_path = tmp_path / 'm.png'
    mask_img.save(mask_path)
    img_path = tmp_path / 'i.png'
    Image.fromarray(np.full(img_hw + (3, ), 100, np.uint8)).save(img_path)
    results = LoadImage()(dict(img_path=str(img_path)))
    results.update(seg_map_path=str(mask_path), **extra)
    return results


def test_index_mask(tmp_path):
    out = LoadSegAnnotation()(_results(tmp_path, Image.fromarray(MASK),
                                       num_classes=4))
    assert out['gt_seg_map'].dtype == np.uint8
    np.testing.assert_array_equal(out['gt_seg_map'], MASK)
    assert out['seg_fields'] == ['gt_seg_map']


def test_palette_mode_mask_gives_indices(tmp_path):
    pimg = Image.new('P', (4, 3))
    pimg.putpalette(sum(PALETTE, []) + [0, 0, 0] * 252)
    pimg.putdata(MASK.reshape(-1).tolist())
    out = LoadSegAnnotation()(_results(tmp_path, pimg, num_classes=4))
    np.testing.assert_array_equal(out['gt_seg_map'], MASK)
    # mask_format='rgb' maps the palette colours through the dataset palette
    no_ignore = np.where(MASK == 255, 0, MASK)
    pimg.putdata(no_ignore.reshape(-1).tolist())
    out = LoadSegAnnotation(mask_format='rgb', rgb_palette=PALETTE)(
        _results(tmp_path, pimg))
    np.testing.assert_array_equal(out['gt_seg_map'], no_ignore)


def test_rgb_encoded_mask(tmp_path):
    mask = np.where(MASK == 255, 0, MASK)
    res = _results(tmp_path, Image.fromarray(_rgb_of(mask)), num_classes=4,
                   palette=PALETTE)
    out = LoadSegAnnotation()(res)
    np.testing.assert_array_equal(out['gt_seg_map'], mask)
    # an explicit rgb_palette wins over results['palette']
    swapped = [PALETTE[1], PALETTE[0], PALETTE[2], PALETTE[3]]
    out = LoadSegAnnotation(rgb_palette=swapped)(_results(
        tmp_path, Image.fromarray(_rgb_of(mask))))
    expected = np.choose(mask, [1, 0, 2, 3])
    np.testing.assert_array_equal(out['gt_seg_map'], expected)


def test_gray_rgb_mask_is_index(tmp_path):
    rgb = np.repeat(MASK[..., None], 3, axis=2)
    out = LoadSegAnnotation()(_results(tmp_path, Image.fromarray(rgb)))
    np.testing.assert_array_equal(out['gt_seg_map'], MASK)


def test_reduce_zero_label(tmp_path):
    mask = np.array([[0, 1, 2], [3, 255, 1]], np.uint8)
    expected = np.array([[255, 0, 1], [2, 255, 0]], np.uint8)
    res = _results(tmp_path, Image.fromarray(mask), img_hw=(2, 3),
                   reduce_zero_label=True, num_classes=3)
    out = LoadSegAnnotation()(res)
    np.testing.assert_array_equal(out['gt_seg_map'], expected)
    # the argument overrides the data info
    res = _results(tmp_path, Image.fromarray(mask), img_hw=(2, 3))
    out = LoadSegAnnotation(reduce_zero_label=True)(res)
    np.testing.assert_array_equal(out['gt_seg_map'], expected)
    assert out['reduce_zero_label'] is True


def test_values_outside_classes(tmp_path):
    res = _results(tmp_path, Image.fromarray(MASK), num_classes=3)
    with pytest.raises(ValueError, match=r'm\.png.*\[3\]'):
        LoadSegAnnotation()(res)
    res = _results(tmp_path, Image.fromarray(MASK))
    with pytest.raises(ValueError, match=r'm\.png.*\[3\]'):
        LoadSegAnnotation(num_classes=3)(res)
    # 255 is the ignore index: fine; with another ignore index it is bad
    res = _results(tmp_path, Image.fromarray(MASK), num_classes=4,
                   ignore_index=0)
    with pytest.raises(ValueError, match=r'\[255\]'):
        LoadSegAnnotation()(res)


def test_size_mismatch_names_both_files(tmp_path):
    res = _results(tmp_path, Image.fromarray(MASK), img_hw=(5, 4))
    with pytest.raises(ValueError) as info:
        LoadSegAnnotation()(res)
    msg = str(info.value)
    assert 'm.png' in msg and 'i.png' in msg
    assert '3x4' in msg and '5x4' in msg


def test_unknown_rgb_colour(tmp_path):
    rgb = _rgb_of(np.where(MASK == 255, 0, MASK))
    rgb[0, 0] = (7, 8, 9)
    res = _results(tmp_path, Image.fromarray(rgb), palette=PALETTE)
    with pytest.raises(ValueError, match=r'm\.png.*\(7, 8, 9\)'):
        LoadSegAnnotation()(res)
    with pytest.raises(ValueError, match='no palette'):
        LoadSegAnnotation()(_results(tmp_path, Image.fromarray(rgb)))
    with pytest.raises(ValueError, match='mask_format="index"'):
        LoadSegAnnotation(mask_format='index')(
            _results(tmp_path, Image.fromarray(rgb)))


def test_unreadable_mask(tmp_path):
    res = _results(tmp_path, Image.fromarray(MASK))
    (tmp_path / 'm.png').write_bytes(b'not a png')
    with pytest.raises(ValueError, match=r'Cannot read mask .*m\.png'):
        LoadSegAnnotation()(res)


def test_rgb_to_index_first_palette_entry_wins():
    rgb = np.array([[[1, 2, 3]]], np.uint8)
    assert rgb_to_index(rgb, [[1, 2, 3], [1, 2, 3]])[0, 0] == 0


def test_bad_args():
    with pytest.raises(ValueError, match='mask_format'):
        LoadSegAnnotation(mask_format='bogus')
