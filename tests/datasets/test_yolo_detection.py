"""YoloDetDataset: detect and segment lines, negatives, bad lines."""
import logging

import numpy as np
import pytest
from mmengine.logging import MMLogger

from dinov3_mm.datasets import YoloDetDataset
from dinov3_mm.datasets.transforms import LoadDetAnnotations

W, H = 40, 20


@pytest.fixture
def log():
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def write_yolo(root, write_png, labels):
    """``images/train/{a,b}.png`` and ``labels/train/<stem>.txt``."""
    for i, name in enumerate(('a', 'b')):
        write_png(root / 'images' / 'train' / f'{name}.png', size=(W, H),
                  seed=i)
    (root / 'labels' / 'train').mkdir(parents=True, exist_ok=True)
    for stem, text in labels.items():
        (root / 'labels' / 'train' / f'{stem}.txt').write_text(text)
    (root / 'data.yaml').write_text('names:\n  0: cat\n  1: dog\n')
    return root


def build(root, **kwargs):
    return YoloDetDataset(data_root=str(root), img_dir='images/train',
                          classes=str(root / 'data.yaml'), **kwargs)


def test_detect_and_segment_lines_in_pixels(tmp_path, write_png):
    root = write_yolo(tmp_path, write_png, {
        'a': '1 0.5 0.5 0.5 0.4\n0 0.1 0.1 0.3 0.1 0.3 0.6\n'})
    ds = build(root)
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert ds.metainfo['cat_ids'] == (0, 1)
    assert len(ds) == 2
    a = ds.get_data_info(0)
    assert (a['width'], a['height']) == (W, H)
    assert a['instances'][0]['bbox'] == pytest.approx([10, 6, 30, 14])
    assert a['instances'][0]['bbox_label'] == 1
    assert a['instances'][1]['bbox'] == pytest.approx([4, 2, 12, 12])
    assert a['instances'][1]['mask'] is None  # with_mask=False
    assert ds.get_data_info(1)['instances'] == []  # no txt: a negative


def test_segment_lines_give_polygon_masks(tmp_path, write_png):
    root = write_yolo(tmp_path, write_png, {
        'a': '0 0.1 0.1 0.5 0.1 0.5 0.9 0.1 0.9\n', 'b': ''})
    ds = build(root, with_mask=True)
    info = ds.get_data_info(0)
    assert info['instances'][0]['mask'] == [
        pytest.approx([4, 2, 20, 2, 20, 18, 4, 18])]
    out = LoadDetAnnotations(with_mask=True)(info)
    expected = np.zeros((H, W), np.uint8)
    expected[2:18, 4:20] = 1
    assert np.array_equal(out['gt_masks'][0], expected)


@pytest.mark.parametrize('line, words', [
    ('0 0.5 0.5 0.2', '4 fields'),
    ('0 0.5 0.5 0.2 0.2 0.3', '6 fields'),
    ('0 1.5 0.5 0.2 0.2', 'outside 0-1'),
    ('0 0.95 0.5 0.2 0.2', 'leaves the image'),
    ('2 0.5 0.5 0.2 0.2', 'class 2'),
])
def test_bad_line_names_file_and_line(tmp_path, write_png, line, words):
    root = write_yolo(tmp_path, write_png,
                      {'a': f'0 0.5 0.5 0.2 0.2\n\n{line}\n'})
    with pytest.raises(ValueError) as exc:
        build(root)
    msg = str(exc.value)
    assert str(root / 'labels' / 'train' / 'a.txt') in msg
    assert 'line 3' in msg and words in msg and 'skip_invalid' in msg


def test_skip_invalid_counts_and_logs(tmp_path, write_png, log):
    root = write_yolo(tmp_path, write_png, {
        'a': '0 0.5 0.5 0.2 0.2\n0 0.5\n1 2 2 0.1 0.1\n',
        'b': '7 0.5 0.5 0.1 0.1\n'})
    ds = build(root, skip_invalid=True)
    assert [len(ds.get_data_info(i)['instances']) for i in range(2)] == [1, 0]
    assert dict(ds.skipped) == dict(bad_fields=1, outside=1, bad_class=1)
    warnings = [r.getMessage() for r in log if r.levelno == logging.WARNING]
    assert any('skipped 3 invalid item(s)' in m for m in warnings)
