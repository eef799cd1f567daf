"""LoadImage and read_image on good, odd and broken files."""
import cv2
import numpy as np
import pytest
from PIL import Image

from dinov3_mm.datasets.transforms import LoadImage, read_image, to_uint8
from dinov3_mm.registry import TRANSFORMS


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3),
                                                dtype=np.uint8)


def load(path, **kwargs):
    return LoadImage(**kwargs)(dict(img_path=str(path)))


def test_rgb_png_roundtrip(tmp_path):
    data = _rgb()
    Image.fromarray(data).save(tmp_path / 'a.png')
    out = load(tmp_path / 'a.png')
    np.testing.assert_array_equal(out['img'], data)
    assert out['img_shape'] == out['ori_shape'] == (20, 30)
    bgr = load(tmp_path / 'a.png', to_rgb=False)['img']
    np.testing.assert_array_equal(bgr, data[..., ::-1])


def test_grayscale_to_three_channels(tmp_path):
    gray = _rgb()[..., 0]
    Image.fromarray(gray).save(tmp_path / 'g.png')
    img = load(tmp_path / 'g.png')['img']
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_rgba_composited(tmp_path):
    data = np.zeros((4, 4, 4), np.uint8)
    data[..., :3] = (200, 100, 50)
    data[:2, ..., 3] = 255
    Image.fromarray(data, 'RGBA').save(tmp_path / 'a.png')
    img = load(tmp_path / 'a.png')['img']
    assert img.shape == (4, 4, 3)
    assert img[0, 0].tolist() == [200, 100, 50]
    assert img[3, 3].tolist() == [0, 0, 0]
    white = load(tmp_path / 'a.png', alpha_background=(255, 255, 255))
    assert white['img'][3, 3].tolist() == [255, 255, 255]


def test_cmyk_jpeg(tmp_path):
    data = np.full((16, 16, 3), (200, 60, 30), np.uint8)
    Image.fromarray(data).convert('CMYK').save(tmp_path / 'c.jpg',
                                               quality=100)
    assert Image.open(tmp_path / 'c.jpg').mode == 'CMYK'
    img = load(tmp_path / 'c.jpg')['img']
    assert img.shape == (16, 16, 3)
    assert np.abs(img.astype(int) - data).max() <= 6


def test_16bit_gray_png_fixed_and_minmax(tmp_path):
    data = np.linspace(1000, 30000, 20 * 30).reshape(20, 30).astype(
        np.uint16)
    cv2.imwrite(str(tmp_path / 'g16.png'), data)
    fixed = load(tmp_path / 'g16.png')['img']
    assert fixed.dtype == np.uint8 and fixed.shape == (20, 30, 3)
    assert fixed[..., 0].min() == round(1000 / 257)
    assert fixed[..., 0].max() == round(30000 / 257)
    stretched = load(tmp_path / 'g16.png', depth_scaling='minmax')['img']
    assert stretched.min() == 0 and stretched.max() == 255


def test_16bit_color_png(tmp_path):
    data = np.zeros((8, 8, 3), np.uint16)
    data[..., 0] = 60000  # red in RGB
    data[..., 2] = 1000
    data[0, 0] = 30000
    cv2.imwrite(str(tmp_path / 'c16.png'), data[..., ::-1])
    img = load(tmp_path / 'c16.png')['img']
    assert img.dtype == np.uint8
    assert abs(int(img[1, 1, 0]) - 60000 // 257) <= 1
    assert img[1, 1, 2] <= 4
    stretched = load(tmp_path / 'c16.png', depth_scaling='minmax')['img']
    assert stretched[1, 1].tolist() == [255, 0, round(1000 * 255 / 60000)]
    assert stretched[0, 0, 0] == round(30000 * 255 / 60000)


def test_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    Image.fromarray(_rgb(10, 30)).save(tmp_path / 'e.jpg', exif=exif)
    assert load(tmp_path / 'e.jpg')['img'].shape == (30, 10, 3)
    kept = load(tmp_path / 'e.jpg', exif_orientation=False)['img']
    assert kept.shape == (10, 30, 3)


@pytest.mark.parametrize('ext', ['jpg', 'png'])
def test_truncated_files_fail_naming_the_file(tmp_path, ext):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / f'full.{ext}')
    blob = (tmp_path / f'full.{ext}').read_bytes()
    broken = tmp_path / f'cut.{ext}'
    broken.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(ValueError, match=f'Cannot read image {broken}'):
        load(broken)


def test_corrupt_and_missing(tmp_path):
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'this is not an image at all')
    with pytest.raises(ValueError, match=f'Cannot read image {bad}'):
        load(bad)
    with pytest.raises(ValueError, match='Cannot read image .*nope.png'):
        load(tmp_path / 'nope.png')


def test_tiff_and_palette(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / 't.tif')
    assert read_image(str(tmp_path / 't.tif')).shape == (20, 30, 3)
    Image.fromarray(_rgb()).convert('P').save(tmp_path / 'p.png')
    assert read_image(str(tmp_path / 'p.png')).shape == (20, 30, 3)


def test_to_uint8_float_and_bad_mode():
    assert to_uint8(np.array([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]
    assert to_uint8(np.array([-1.0, 1.0])).tolist() == [0, 255]
    with pytest.raises(ValueError, match='depth_scaling'):
        to_uint8(np.zeros(2, np.uint16), 'log')


def test_registry_build():
    transform = TRANSFORMS.build(dict(type='LoadImage', to_rgb=False))
    assert isinstance(transform, LoadImage) and not transform.to_rgb
    assert 'to_rgb=False' in repr(transform)
