"""validate_seg_dataset on generated and hand-broken mask folders."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from dinov3_mm.datasets.seg_validation import (SEG_CHECKS, SEG_DEFAULT_FAIL_ON,
                                               SegReport, SegValidationRules,
                                               validate_seg_dataset)
from dinov3_mm.datasets.synthetic_seg import (SEG_CLASSES,
                                              write_seg_shapes_dataset)
from dinov3_mm.datasets.validation import Report, ValidationRules

CLASSES = ('bg', 'a', 'b', 'c')
PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]


def _image(path, hw=(32, 32), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, hw + (3, ), dtype=np.uint8)).save(
        path)


def _mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(mask, Image.Image):
        mask.save(path)
    else:
        Image.fromarray(mask).save(path)


def _pmode(mask):
    img = Image.new('P', mask.shape[::-1])
    img.putpalette(sum(PALETTE, []) + [0, 0, 0] * 252)
    img.putdata(mask.reshape(-1).tolist())
    return img


def write_broken(root):
    """The layout described in the module docstring of the expectations."""
    img, ann = root / 'img_dir', root / 'ann_dir'
    seed = iter(range(100))
    # ---- train
    good = np.zeros((32, 32), np.uint8)
    good[16:, :16] = 1
    good[16:, 16:] = 2
    _image(img / 'train/good.png', seed=next(seed))
    _mask(ann / 'train/good.png', good)
    pm = np.full((32, 32), 3, np.uint8)
    pm[0] = 0
    _image(img / 'train/pmode.png', seed=next(seed))
    _mask(ann / 'train/pmode.png', _pmode(pm))
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = PALETTE[1]
    rgb[:, 16:] = PALETTE[3]
    _image(img / 'train/rgb.png', seed=next(seed))
    _mask(ann / 'train/rgb.png', rgb)
    bad = np.zeros((32, 32), np.uint8)
    bad[0, :10] = 7
    bad[5, 5] = 9
    _image(img / 'train/badval.png', seed=next(seed))
    _mask(ann / 'train/badval.png', bad)
    _image(img / 'train/small.png', seed=next(seed))
    _mask(ann / 'train/small.png', np.ones((16, 32), np.uint8))
    _image(img / 'train/nomask.png', seed=next(seed))
    _image(img / 'train/corrupt.png', seed=next(seed))
    (ann / 'train/corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    _mask(ann / 'train/orphan.png', np.zeros((32, 32), np.uint8))
    # ---- val
    _image(img / 'val/ign.png', seed=next(seed))
    _mask(ann / 'val/ign.png', np.full((32, 32), 255, np.uint8))
    _image(img / 'val/bgonly.png', seed=next(seed))
    _mask(ann / 'val/bgonly.png', np.zeros((32, 32), np.uint8))
    (img / 'val/badimg.png').write_bytes(b'not an image at all')
    _mask(ann / 'val/badimg.png', np.full((32, 32), 2, np.uint8))
    unknown = np.zeros((32, 32, 3), np.uint8)
    unknown[3, 4] = (1, 2, 3)
    _image(img / 'val/rgbbad.png', seed=next(seed))
    _mask(ann / 'val/rgbbad.png', unknown)
    return root


@pytest.fixture
def broken(tmp_path):
    return write_broken(tmp_path / 'broken')


def _issues(report, check):
    return {os.path.basename(p): d for p, d in report.issues.get(check, [])}


def test_generated_dataset_passes_with_exact_counts(tmp_path):
    root = write_seg_shapes_dataset(str(tmp_path / 'shapes'), num_train=5,
                                    num_val=2, size=32, seed=3)
    report = validate_seg_dataset(root, classes=SEG_CLASSES)
    assert isinstance(report, SegReport) and isinstance(report, Report)
    assert report.passed and report.failed_rules == []
    assert list(report.counts) == ['train', 'val']
    expected, images = {}, {}
    for split in ('train', 'val'):
        folder = os.path.join(root, 'ann_dir', split)
        hist = np.zeros(4, np.int64)
        present = np.zeros(4, np.int64)
        for name in os.listdir(folder):
            mask = np.asarray(Image.open(os.path.join(folder, name)))
            counts = np.bincount(mask.reshape(-1), minlength=4)
            hist += counts
            present += counts > 0
        expected[split] = dict(zip(SEG_CLASSES, hist.tolist()))
        images[split] = dict(zip(SEG_CLASSES, present.tolist()))
    assert report.counts == expected
    assert report.image_counts == images
    assert report.split_stats == dict(
        train=dict(images=5, masks=5, pairs=5, pixels=5 * 1024, ignored=0),
        val=dict(images=2, masks=2, pairs=2, pixels=2 * 1024, ignored=0))
    totals = {c: expected['train'][c] + expected['val'][c]
              for c in SEG_CLASSES}
    assert report.frequencies == pytest.approx(
        {c: n / (7 * 1024) for c, n in totals.items()})
    assert report.imbalance == pytest.approx(
        max(totals.values()) / min(totals.values()))
    assert report.num_images == 7 and report.num_masks == 7
    data = json.loads(json.dumps(report.to_dict()))
    assert data['kind'] == 'segmentation' and data['passed'] is True
    assert data['rules']['fail_on'] == list(SEG_DEFAULT_FAIL_ON)
    text = report.render()
    assert 'Images: 7 (train 5, val 2)' in text
    assert 'Result: PASSED' in text
    bg_line = next(line for line in text.splitlines()
                   if line.startswith('background'))
    assert str(totals['background']) in bg_line.split()


def test_broken_dataset_reports_every_problem(broken):
    report = validate_seg_dataset(str(broken), classes=CLASSES,
                                  palette=PALETTE)
    assert not report.passed
    assert report.failed_rules == ['unreadable', 'missing_masks',
                                   'orphan_masks', 'size_mismatch',
                                   'out_of_range']
    # pairing
    missing = _issues(report, 'missing_masks')
    assert list(missing) == ['nomask.png']
    assert os.path.join('ann_dir', 'train', 'nomask.png') in \
        missing['nomask.png'] and 'allow_missing_masks' in \
        missing['nomask.png']
    orphans = _issues(report, 'orphan_masks')
    assert list(orphans) == ['orphan.png']
    assert os.path.join('img_dir', 'train', 'orphan.png') in \
        orphans['orphan.png'] and 'remove the mask' in orphans['orphan.png']
    # unreadable: the corrupt mask and the corrupt image
    unreadable = report.issues['unreadable']
    paths = sorted(os.path.relpath(p, broken) for p, _ in unreadable)
    assert paths == [os.path.join('ann_dir', 'train', 'corrupt.png'),
                     os.path.join('img_dir', 'val', 'badimg.png')]
    details = dict((os.path.relpath(p, broken), d) for p, d in unreadable)
    assert 'Cannot read mask' in details[
        os.path.join('ann_dir', 'train', 'corrupt.png')]
    assert 're-export' in details[os.path.join('img_dir', 'val',
                                               'badimg.png')]
    # size
    sizes = _issues(report, 'size_mismatch')
    assert list(sizes) == ['small.png']
    assert 'mask is 16x32 (HxW)' in sizes['small.png']
    assert 'is 32x32' in sizes['small.png']
    # values: per file, with the offending values and their pixel count
    values = _issues(report, 'out_of_range')
    assert sorted(values) == ['badval.png', 'rgbbad.png']
    assert 'values [7, 9] (11 px) outside the 4 classes [0, 3]' in \
        values['badval.png']
    assert 'ignore index 255' in values['badval.png']
    assert '(1, 2, 3)' in values['rgbbad.png']
    assert list(_issues(report, 'ignore_only')) == ['ign.png']
    assert 'all 1024 pixels are the ignore index 255' in \
        _issues(report, 'ignore_only')['ign.png']
    assert list(_issues(report, 'background_only')) == ['bgonly.png']
    assert "class 0 'bg'" in _issues(report, 'background_only')['bgonly.png']
    assert 'empty_classes' not in report.issues
    # counts: P-mode masks give palette indices, RGB masks map through the
    # palette, in-range pixels of bad masks still count
    assert report.counts == dict(
        train=dict(bg=512 + 32 + 1013, a=256 + 512 + 512, b=256,
                   c=992 + 512),
        val=dict(bg=1024, a=0, b=1024, c=0))
    assert report.image_counts == dict(train=dict(bg=3, a=3, b=1, c=2),
                                       val=dict(bg=1, a=0, b=1, c=0))
    assert report.split_stats == dict(
        train=dict(images=7, masks=7, pairs=6, pixels=4608, ignored=0),
        val=dict(images=4, masks=4, pairs=4, pixels=3072, ignored=1024))
    assert report.frequencies['bg'] == pytest.approx(2581 / 6645)
    assert report.imbalance == pytest.approx(2581 / 1280)
    text = report.render()
    assert '[FAIL] out_of_range: 2' in text
    assert '[warn] ignore_only: 1' in text
    assert 'Ignored pixels: 1024 of 7680 (13.33%)' in text
    assert 'FAILED (unreadable, missing_masks, orphan_masks, ' \
        'size_mismatch, out_of_range)' in text


def test_rules_and_fail_on(broken):
    report = validate_seg_dataset(str(broken), classes=CLASSES,
                                  palette=PALETTE, fail_on='none')
    assert report.passed and report.issues
    report = validate_seg_dataset(
        str(broken), classes=CLASSES, palette=PALETTE,
        rules=SegValidationRules(fail_on=['ignore_only', 'imbalance'],
                                 max_imbalance=1.5))
    assert report.failed_rules == ['ignore_only', 'imbalance']
    assert 'bg has 2581 pixels' in report.issues['imbalance'][0][1]
    assert issubclass(SegValidationRules, ValidationRules)
    assert set(SegValidationRules(fail_on='all').fail_on) == set(SEG_CHECKS)
    with pytest.raises(ValueError, match='bogus'):
        SegValidationRules(fail_on=['bogus'])


def test_reduce_zero_label_and_num_classes(tmp_path):
    img_dir, ann_dir = tmp_path / 'imgs', tmp_path / 'masks'
    mask = np.zeros((32, 32), np.uint8)   # 0 unlabelled, labels 1..3
    mask[:8] = 1
    mask[8:16] = 3
    mask[16:20] = 2
    _image(img_dir / 'x.jpg')
    _mask(ann_dir / 'x_mask.png', mask)
    kwargs = dict(img_suffix='.jpg', seg_map_suffix='_mask.png')
    report = validate_seg_dataset((str(img_dir), str(ann_dir)),
                                  num_classes=3, reduce_zero_label=True,
                                  **kwargs)
    assert report.passed and list(report.counts) == ['all']
    assert report.counts['all'] == dict(class_0=256, class_1=128,
                                        class_2=256)
    assert report.split_stats['all']['ignored'] == 1024 - 640
    # without reduce_zero_label, 3 is out of range, and the message says
    # what to try
    report = validate_seg_dataset((str(img_dir), str(ann_dir)),
                                  num_classes=3, **kwargs)
    detail = _issues(report, 'out_of_range')['x_mask.png']
    assert 'values [3] (256 px)' in detail and 'reduce_zero_label' in detail


def test_empty_class_fails(tmp_path):
    _image(tmp_path / 'img_dir' / 'x.png')
    _mask(tmp_path / 'ann_dir' / 'x.png', np.eye(32, dtype=np.uint8))
    report = validate_seg_dataset(str(tmp_path), classes=['bg', 'a', 'b'])
    assert list(report.counts) == ['all']
    assert report.counts['all'] == dict(bg=1024 - 32, a=32, b=0)
    assert report.failed_rules == ['empty_classes']
    assert _issues(report, 'empty_classes') == {
        'b': 'no pixel in any mask; check the class list and the masks '
             '(class index 2)'}


def test_layout_and_argument_errors(tmp_path):
    with pytest.raises(ValueError, match='--classes'):
        validate_seg_dataset(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='img_dir'):
        validate_seg_dataset(str(tmp_path), num_classes=2)
    with pytest.raises(FileNotFoundError, match='not a folder'):
        validate_seg_dataset(str(tmp_path / 'nope'), num_classes=2)
    (tmp_path / 'img_dir' / 'train').mkdir(parents=True)
    (tmp_path / 'ann_dir' / 'train').mkdir(parents=True)
    with pytest.raises(ValueError, match=r'no \*\.png image'):
        validate_seg_dataset(str(tmp_path), num_classes=2)
    with pytest.raises(ValueError, match='num_classes=3'):
        validate_seg_dataset(str(tmp_path), classes=['a', 'b'],
                             num_classes=3)
    with pytest.raises(ValueError, match='mask_format'):
        validate_seg_dataset(str(tmp_path), num_classes=2,
                             mask_format='bogus')
