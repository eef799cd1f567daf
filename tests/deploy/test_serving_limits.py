"""Bounded serving: size limits checked before decoding, client errors 400.

The header checks run on tiny files whose headers declare huge images (a
patched PNG IHDR, a patched JPEG SOF); a decoder that fails when called
proves nothing was decoded. One real tritonserver (module scope) serves the
classification deployment with the default limits.
"""
import importlib.util
import io
import json
import os.path as osp
import struct
import warnings
import zlib

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from PIL import Image, ImageFile
from tritonclient.utils import InferenceServerException

from dinov3_mm.deploy.client import ImageClient, read_files
from dinov3_mm.deploy.deployment import deploy
from dinov3_mm.deploy.server import TritonServer, http_input_args
from dinov3_mm.deploy.serving_spec import serving_limits
from dinov3_mm.deploy.triton_repo import (http_max_input_size,
                                          repository_http_input_size,
                                          server_args)
from dinov3_mm.utils import image_ops
from dinov3_mm.utils.image_ops import (DEFAULT_MAX_IMAGE_BYTES,
                                       DEFAULT_MAX_IMAGE_PIXELS,
                                       ImageRejected, check_image_limits,
                                       image_header_size, preprocess_encoded,
                                       read_image)

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')
REPRS = ('<PIL', "b'", 'b"', 'Error(', 'object at 0x', '<_io')
HUGE_MESSAGE = ('image is 12000x12000 = 144.0 MP, above the 40.0 MP limit '
                '(--max-image-pixels)')


def png_declaring(width: int, height: int) -> bytes:
    """An 8x8 PNG whose IHDR (with a valid CRC) declares ``width x height``."""
    buf = io.BytesIO()
    Image.new('RGB', (8, 8), (10, 200, 30)).save(buf, 'PNG')
    data = bytearray(buf.getvalue())
    # signature (8), IHDR length (4) and type (4), then width and height
    ihdr = struct.pack('>II', width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack('>I', zlib.crc32(b'IHDR' + ihdr))
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A 16x16 JPEG whose SOF0 segment declares ``width x height``."""
    buf = io.BytesIO()
    Image.new('RGB', (16, 16), (90, 90, 200)).save(buf, 'JPEG')
    data = bytearray(buf.getvalue())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def good_png(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new('RGB', size, (200, 10, 10)).save(buf, 'PNG')
    return buf.getvalue()


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any image data get decoded."""

    def refuse(*args, **kwargs):
        raise AssertionError('the image was decoded')

    monkeypatch.setattr(ImageFile.ImageFile, 'load', refuse)
    monkeypatch.setattr(image_ops.cv2, 'imdecode', refuse)
    monkeypatch.setattr(image_ops.cv2, 'imread', refuse)


def _spec(**limits):
    spec = dict(
        task='classification',
        decode=dict(to_rgb=True, depth_scaling='fixed',
                    alpha_background=[0, 0, 0], exif_orientation=True),
        resize=dict(size=[32, 32], pad_val=0, interpolation='bilinear',
                    center=True),
        normalize=dict(mean=[0.0] * 3, std=[1.0] * 3, swap_rb=False))
    if limits:
        spec['limits'] = limits
    return spec


def test_huge_declared_png_refused_from_its_header(no_decoding):
    data = png_declaring(12000, 12000)
    assert len(data) < 100
    assert image_header_size(data) == (12000, 12000)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no DecompressionBombWarning
        with pytest.raises(ImageRejected) as info:
            check_image_limits(data)
    assert str(info.value) == HUGE_MESSAGE
    assert (info.value.kind, info.value.value, info.value.limit) == (
        'pixels', 144_000_000, DEFAULT_MAX_IMAGE_PIXELS)
    # the served preprocessing and read_image refuse it the same way
    with pytest.raises(ImageRejected, match=r'^image is 12000x12000'):
        preprocess_encoded(data, _spec())
    with pytest.raises(ImageRejected, match='above the 1.0 MP limit'):
        read_image(data, max_pixels=1_000_000)


def test_declared_size_beyond_pillows_bomb_error_gets_our_message(
        no_decoding):
    # 400 MP: Image.open itself raises DecompressionBombError above 179 MP
    data = png_declaring(20000, 20000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))
    with pytest.raises(ImageRejected) as info:
        check_image_limits(data)
    assert str(info.value) == ('image is 20000x20000 = 400.0 MP, above the '
                               '40.0 MP limit (--max-image-pixels)')


def test_huge_declared_jpeg_and_file_paths(no_decoding, tmp_path):
    data = jpeg_declaring(60000, 50000)
    assert image_header_size(data) == (60000, 50000)
    with pytest.raises(ImageRejected, match=r'60000x50000 = 3000\.0 MP'):
        check_image_limits(data)
    path = tmp_path / 'huge.jpg'
    path.write_bytes(data)
    assert check_image_limits(str(path), max_pixels=None) == (60000, 50000)
    with pytest.raises(ImageRejected) as info:
        read_image(str(path), max_pixels=DEFAULT_MAX_IMAGE_PIXELS)
    assert str(info.value).startswith(f'{path}: image is 60000x50000')


def test_byte_limit_checked_before_the_header():
    junk = b'\0' * 2048
    with pytest.raises(ImageRejected) as info:
        check_image_limits(junk, max_bytes=1024)
    assert str(info.value) == ('image is 2048 bytes encoded, above the '
                               '1024 bytes limit (--max-image-bytes)')
    assert info.value.kind == 'bytes'
    # at the limit the bytes are read, and refused as no image
    with pytest.raises(ValueError, match='not an image format') as info:
        check_image_limits(junk, max_bytes=2048)
    assert not isinstance(info.value, ImageRejected)
    big = b'\0' * (DEFAULT_MAX_IMAGE_BYTES + 1)
    with pytest.raises(ImageRejected, match=r'33554433 bytes encoded, above '
                       r'the 33554432 bytes limit \(--max-image-bytes\)'):
        preprocess_encoded(big, _spec())
    with pytest.raises(ImageRejected, match=r'^image is 3\.0 MiB encoded, '
                       r'above the 2\.0 MiB limit'):
        preprocess_encoded(big[:3 << 20], _spec(max_image_bytes=2 << 20))


def test_images_within_limits_decode_as_before(tmp_path):
    data = good_png()
    assert check_image_limits(data) == (40, 30)
    np.testing.assert_array_equal(
        read_image(data, max_pixels=1200, max_bytes=len(data)),
        read_image(data))
    # limits from the spec; null switches a limit off
    spec = _spec(max_image_pixels=1200, max_image_bytes=None)
    x, meta = preprocess_encoded(data, spec)
    assert x.shape == (3, 32, 32) and meta[:2] == [30, 40]
    with pytest.raises(ImageRejected, match='1199 pixels limit'):
        preprocess_encoded(data, _spec(max_image_pixels=1199))


@pytest.mark.parametrize('data,reason', [
    (b'', 'empty image data'),
    (b'not an image', 'not an image format Pillow can read'),
    (good_png()[:60], 'image file is truncated'),
], ids=['empty', 'text', 'truncated'])
def test_unreadable_bytes_give_plain_messages(data, reason):
    for limits in (dict(), dict(max_pixels=10**6, max_bytes=10**6)):
        with pytest.raises(ValueError) as info:
            read_image(data, **limits)
        message = str(info.value)
        assert message == (f'Cannot read image ({len(data)} encoded '
                           f'bytes): {reason}')
        assert not any(r in message for r in REPRS), message
    with pytest.raises(ValueError, match='No such file or directory$'):
        check_image_limits('/no/such/image.png')


def test_limit_settings_are_validated(repo_root):
    assert serving_limits() == dict(max_image_pixels=40_000_000,
                                    max_image_bytes=32 << 20)
    assert serving_limits(None, None) == dict(max_image_pixels=None,
                                              max_image_bytes=None)
    for bad in (0, 1.5, float('nan'), '40', True):
        with pytest.raises(ValueError, match='--max-image-pixels must be a '
                           r'positive whole number \(or None for no limit\)'):
            serving_limits(bad)
    spec = importlib.util.spec_from_file_location(
        'deploy_tool', repo_root / 'tools' / 'deploy.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(['c.py', '--work-dir', 'w', '--max-image-pixels',
                            '4e6', '--max-image-bytes', 'none'])
    assert (args.max_image_pixels, args.max_image_bytes) == (4_000_000, None)
    args = tool.parse_args(['c.py', '--work-dir', 'w'])
    assert (args.max_image_pixels, args.max_image_bytes) == (
        DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_IMAGE_BYTES)
    for bad in ('0', '-5', '1.5', 'lots', 'inf'):
        with pytest.raises(SystemExit):
            tool.parse_args(['c.py', '--work-dir', 'w',
                             '--max-image-bytes', bad])


def test_http_body_cap_sized_for_a_full_batch(tmp_path):
    limit = 1 << 20
    assert http_max_input_size(limit, 4) == 4 * (limit + 4) + (1 << 20)
    assert http_max_input_size(None, 4) is None
    assert server_args(dict(max_image_bytes=limit), 4) == [
        f'--http-max-input-size={http_max_input_size(limit, 4)}']
    assert server_args(dict(max_image_bytes=None), 4) == []
    repo = tmp_path / 'repo'
    pre = repo / 'm_preprocess'
    (pre / '1').mkdir(parents=True)
    (pre / 'config.pbtxt').write_text('name: "m_preprocess"\n'
                                      'max_batch_size: 4\n')
    (pre / '1' / 'preprocess.json').write_text(json.dumps(
        dict(limits=dict(max_image_bytes=limit))))
    (repo / 'other').mkdir()
    assert repository_http_input_size(str(repo)) == \
        http_max_input_size(limit, 4)
    knows = 'usage\n  --http-max-input-size <integer>\n'
    assert http_input_args(str(repo), knows) == [
        f'--http-max-input-size={http_max_input_size(limit, 4)}']
    # a server without the cap (2.51, as shipped), or the user's own value
    assert http_input_args(str(repo), 'usage\n  --http-port\n') == []
    assert http_input_args(str(repo), knows,
                           ['--http-max-input-size=5']) == []


# ---------------------------------------------------------------- server


@pytest.fixture(scope='module')
def limits_server(cls_checkpoint, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('limits'))
    summary = deploy(cls_checkpoint['config'], cls_checkpoint['checkpoint'],
                     folder, max_batch_size=4, topk=3, num_parity_images=2)
    with TritonServer(osp.join(folder, 'triton_python'),
                      startup_timeout=120) as server:
        yield server, summary


def _infer(module, url, model, items):
    client = module.InferenceServerClient(url)
    try:
        data = np.array([[item] for item in items], dtype=np.object_)
        inp = module.InferInput('IMAGE', list(data.shape), 'BYTES')
        inp.set_data_from_numpy(data)
        return client.infer(model, [inp])
    finally:
        client.close()


def _refused(module, url, items, model='dinov3'):
    with pytest.raises(InferenceServerException) as info:
        _infer(module, url, model, items)
    message = info.value.message()
    assert not any(r in message for r in REPRS), message
    return info.value.status(), message


def test_limits_recorded_in_the_deployment(limits_server):
    server, summary = limits_server
    limits = dict(max_image_pixels=40_000_000, max_image_bytes=32 << 20)
    assert summary['limits'] == summary['spec']['limits'] == limits
    with open(osp.join(server.model_repository, 'dinov3_preprocess', '1',
                       'preprocess.json')) as f:
        assert json.load(f)['limits'] == limits
    body = 4 * (limits['max_image_bytes'] + 4) + (1 << 20)
    assert summary['server_args'] == [f'--http-max-input-size={body}']


def test_huge_declared_png_is_400_and_the_server_keeps_serving(
        limits_server, cls_checkpoint):
    server, _ = limits_server
    huge, good = png_declaring(12000, 12000), read_files(
        cls_checkpoint['odd_images'][:1])[0]
    status, message = _refused(httpclient, server.http_url, [huge])
    assert status == '400'
    assert message.endswith(f'preprocess: image 0 of the request: '
                            f'{HUGE_MESSAGE}')
    status, message = _refused(grpcclient, server.grpc_url, [good, huge])
    assert status == 'StatusCode.INVALID_ARGUMENT'
    assert f'image 1 of the request: {HUGE_MESSAGE}' in message
    # straight to the preprocessing model: the same answer
    status, message = _refused(httpclient, server.http_url, [huge],
                               'dinov3_preprocess')
    assert status == '400' and message == \
        f'preprocess: image 0 of the request: {HUGE_MESSAGE}'
    client = ImageClient(server.http_url)
    assert client.infer([good])['CLASS_IDS'].shape == (1, 3)
    client.close()


def test_corrupt_and_oversized_images_are_400(limits_server,
                                              cls_checkpoint):
    server, _ = limits_server
    good = read_files(cls_checkpoint['odd_images'][:1])[0]
    status, message = _refused(grpcclient, server.grpc_url, [good[:50]])
    assert status == 'StatusCode.INVALID_ARGUMENT'
    # a truncated JPEG: Pillow's reason ('Truncated File Read') follows
    assert message.startswith("in ensemble 'dinov3', preprocess: image 0 of "
                              "the request: Cannot read image (50 encoded "
                              "bytes): ")
    # above the byte limit: Triton's HTTP server lets the body through
    big = b'\0' * (DEFAULT_MAX_IMAGE_BYTES + 1)
    status, message = _refused(httpclient, server.http_url, [big])
    assert status == '400'
    assert message.endswith('image 0 of the request: image is 33554433 bytes '
                            'encoded, above the 33554432 bytes limit '
                            '(--max-image-bytes)')
    out = _infer(grpcclient, server.grpc_url, 'dinov3', [good, good])
    assert out.as_numpy('CLASS_IDS').shape == (2, 3)


def test_client_tool_names_the_refused_file(limits_server, cls_checkpoint,
                                            repo_root, tmp_path, capsys):
    server, _ = limits_server
    huge = tmp_path / 'huge.png'
    huge.write_bytes(png_declaring(12000, 12000))
    good = cls_checkpoint['odd_images'][0]
    spec = importlib.util.spec_from_file_location(
        'triton_client_tool', repo_root / 'tools' / 'triton_client.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    code = tool.main([good, str(huge), good, '--url', server.http_url,
                      '--batch-size', '2'])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert lines[0] == f'{good}\tERROR not served: {huge} in the same ' \
        'request was refused'
    assert lines[1].startswith(f'{huge}\tERROR [400] ')
    assert lines[1].endswith(HUGE_MESSAGE)
    assert lines[2].split('\t')[0] == good
    assert 'ERROR' not in lines[2]


def test_parity_image_above_the_limit_fails_the_deployment(cls_checkpoint,
                                                           tmp_path):
    # the generated shapes are 48x48 = 2304 pixels
    with pytest.raises(ValueError, match=r'^Parity image .*\.png: image is '
                       r'48x48 = 2304 pixels, above the 1000 pixels limit '
                       r'\(--max-image-pixels\)$'):
        deploy(cls_checkpoint['config'], cls_checkpoint['checkpoint'],
               str(tmp_path), max_image_pixels=1000, num_parity_images=1)
