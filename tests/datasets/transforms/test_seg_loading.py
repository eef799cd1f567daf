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


# ------------------------------------------------- images without a mask
def test_missing_mask_gives_all_ignore_map(tmp_path):
    res = _results(tmp_path, Image.fromarray(MASK), img_hw=(5, 7),
                   num_classes=4)
    res['seg_map_path'] = None
    out = LoadSegAnnotation()(res)
    seg = out['gt_seg_map']
    assert seg.shape == (5, 7) and seg.dtype == np.uint8
    assert (seg == 255).all()
    assert out['seg_fields'] == ['gt_seg_map']
    assert out['reduce_zero_label'] is False
    # the ignore index of the data info or the argument; reduce_zero_label
    # does not shift it
    res['ignore_index'] = 0
    res['reduce_zero_label'] = True
    out = LoadSegAnnotation()(res)
    assert (out['gt_seg_map'] == 0).all()
    assert out['reduce_zero_label'] is True
    out = LoadSegAnnotation(ignore_index=-1)(dict(res))
    assert out['gt_seg_map'].dtype == np.int64
    assert (out['gt_seg_map'] == -1).all()
    # seg_map_path absent counts as None; the size then comes from img_shape
    out = LoadSegAnnotation()(dict(img_shape=(2, 3), img_path='x.png'))
    assert out['gt_seg_map'].shape == (2, 3)


def test_missing_mask_needs_the_image_first():
    with pytest.raises(ValueError, match=r'x\.png.*LoadImage'):
        LoadSegAnnotation()(dict(img_path='x.png', seg_map_path=None))


def test_missing_mask_through_dataset_and_metric(tmp_path):
    from dinov3_mm.datasets.seg_folder import SegFolderDataset
    from dinov3_mm.datasets.transforms import formatting  # noqa: F401
    from dinov3_mm.evaluation.functional import intersect_and_union
    for split_dir in ('img_dir/train', 'ann_dir/train'):
        (tmp_path / split_dir).mkdir(parents=True)
    for stem in ('a', 'b'):
        Image.fromarray(np.full((6, 8, 3), 50, np.uint8)).save(
            tmp_path / 'img_dir/train' / f'{stem}.png')
    Image.fromarray(np.ones((6, 8), np.uint8)).save(
        tmp_path / 'ann_dir/train/a.png')
    pipeline = [dict(type='LoadImage'), dict(type='LoadSegAnnotation'),
                dict(type='PackSegInputs')]
    ds = SegFolderDataset(data_root=str(tmp_path), classes=('bg', 'fg'),
                          allow_missing_masks=True, pipeline=pipeline)
    assert [ds.get_data_info(i)['seg_map_path'] is None
            for i in range(2)] == [False, True]
    labelled, unlabelled = ds[0], ds[1]
    assert (labelled['data_samples'].gt_sem_seg.data == 1).all()
    gt = unlabelled['data_samples'].gt_sem_seg.data
    assert gt.shape == (1, 6, 8) and (gt == 255).all()
    assert unlabelled['data_samples'].metainfo['seg_map_path'] is None
    # the metric counts none of its pixels, whatever the prediction
    counts = intersect_and_union(gt.new_zeros(gt.shape), gt, 2, 255)
    assert all(int(c.sum()) == 0 for c in counts)


def test_read_seg_map_and_reduce_helpers(tmp_path):
    from dinov3_mm.datasets.transforms.seg_loading import (
        UnknownColourError, read_seg_map, reduce_zero_label_map)
    Image.fromarray(MASK).save(tmp_path / 'm.png')
    np.testing.assert_array_equal(read_seg_map(str(tmp_path / 'm.png')),
                                  MASK)
    np.testing.assert_array_equal(
        reduce_zero_label_map(np.array([0, 1, 4, 255])), [255, 0, 3, 255])
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (9, 9, 1)
    Image.fromarray(rgb).save(tmp_path / 'c.png')
    with pytest.raises(UnknownColourError, match=r'c\.png.*\(9, 9, 1\)'):
        read_seg_map(str(tmp_path / 'c.png'), palette=PALETTE)
    assert issubclass(UnknownColourError, ValueError)
    with pytest.raises(ValueError, match='mask_format'):
        read_seg_map(str(tmp_path / 'm.png'), mask_format='bogus')
