"""tools/validate_dataset.py: report and exit codes."""
import importlib.util
import json

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope='module')
def tool(repo_root):
    """The tool's module, imported in-process (its ``main`` returns codes)."""
    spec = importlib.util.spec_from_file_location(
        'validate_dataset_tool', repo_root / 'tools' / 'validate_dataset.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _folder(root, counts):
    rng = np.random.default_rng(0)
    for name, num in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(num):
            data = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(data).save(root / name / f'{i}.png')
    return root


def test_subprocess_failing_rule_exits_one(run_python, repo_root, tmp_path):
    root = _folder(tmp_path / 'd', dict(a=3, b=4))
    (root / 'a' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    proc = run_python(args=[repo_root / 'tools' / 'validate_dataset.py',
                            root])
    assert proc.returncode == 1, proc.stderr
    assert '[FAIL] unreadable' in proc.stdout and 'broken.jpg' in proc.stdout
    assert 'FAILED (unreadable)' in proc.stdout


def test_clean_dataset_exits_zero(tool, tmp_path, capsys):
    root = _folder(tmp_path / 'd', dict(a=3, b=4))
    out = tmp_path / 'report.json'
    assert tool.main([str(root), '--json', str(out)]) == 0
    assert 'Result: PASSED' in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report['passed'] and report['counts'] == {'all': dict(a=3, b=4)}


def test_fail_on_and_thresholds(tool, tmp_path, capsys):
    root = _folder(tmp_path / 'd', dict(a=3, b=4))
    assert tool.main([str(root), '--fail-on', 'none', '--min-size',
                      '64']) == 0
    assert '[warn] too_small' in capsys.readouterr().out
    assert tool.main([str(root), '--fail-on', 'too_small', '--min-size',
                      '64']) == 1
    assert 'FAILED (too_small)' in capsys.readouterr().out
    assert tool.main([str(root), '--max-imbalance', '1.1']) == 1
    assert 'FAILED (imbalance)' in capsys.readouterr().out


def test_bad_annotations_exit_two(tool, tmp_path, capsys):
    (tmp_path / 'a.csv').write_text('path,label\nx.png\n')
    assert tool.main([str(tmp_path / 'a.csv')]) == 2
    assert 'a.csv, line 2' in capsys.readouterr().err
    assert tool.main([str(tmp_path / 'a.csv'), '--fail-on', 'bogus']) == 2


# ------------------------------------------------------------ segmentation
SEG_NAMES = 'background,circle,square,triangle'


def _seg_root(tmp_path):
    from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
    return write_seg_shapes_dataset(str(tmp_path / 'seg'), num_train=3,
                                    num_val=2, size=32, seed=0)


def _seg_pixels(root):
    totals = np.zeros(4, np.int64)
    for split in ('train', 'val'):
        folder = root / 'ann_dir' / split
        for path in folder.iterdir():
            totals += np.bincount(np.asarray(Image.open(path)).reshape(-1),
                                  minlength=4)
    return totals


def test_seg_root_detected_and_clean(tool, tmp_path, capsys):
    root = _seg_root(tmp_path)
    out = tmp_path / 'seg.json'
    assert tool.main([root, '--classes', SEG_NAMES, '--json',
                      str(out)]) == 0
    text = capsys.readouterr().out
    assert '(segmentation)' in text and 'Result: PASSED' in text
    assert 'Images: 5 (train 3, val 2)' in text
    report = json.loads(out.read_text())
    assert report['kind'] == 'segmentation' and report['passed']
    totals = _seg_pixels(tmp_path / 'seg')
    got = [sum(report['counts'][s][c] for s in ('train', 'val'))
           for c in SEG_NAMES.split(',')]
    assert got == totals.tolist()
    assert report['frequencies']['background'] == pytest.approx(
        totals[0] / totals.sum())
    # the classes from a file, or only their number
    names = tmp_path / 'classes.txt'
    names.write_text(SEG_NAMES.replace(',', '\n'))
    assert tool.main([root, '--classes', str(names)]) == 0
    assert tool.main(['--seg', root, '--num-classes', '4']) == 0
    assert 'class_3' in capsys.readouterr().out


def test_seg_broken_files_exit_one(tool, tmp_path, capsys):
    root = tmp_path / 'seg'
    _seg_root(tmp_path)
    ann = root / 'ann_dir' / 'train'
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(
        ann / 'train_00000.png')                              # out of class
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(
        ann / 'train_00001.png')                              # wrong size
    (root / 'ann_dir' / 'val' / 'val_00000.png').unlink()     # missing
    (ann / 'train_00002.png').write_bytes(b'garbage')         # corrupt
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(
        ann / 'extra.png')                                    # orphan
    assert tool.main([str(root), '--classes', SEG_NAMES]) == 1
    text = capsys.readouterr().out
    for check in ('unreadable', 'missing_masks', 'orphan_masks',
                  'size_mismatch', 'out_of_range'):
        assert f'[FAIL] {check}: 1' in text
    assert 'train_00000.png: values [9] (1024 px) outside the 4 classes' \
        in text
    assert 'train_00001.png: mask is 8x8 (HxW)' in text
    assert 'val_00000.png: no mask' in text
    assert 'extra.png: no image' in text
    assert 'train_00002.png: Cannot read mask' in text
    # 9 is fine with 10 classes; --fail-on chooses what fails
    assert tool.main([str(root), '--num-classes', '10', '--fail-on',
                      'out_of_range']) == 0
    assert tool.main([str(root), '--num-classes', '10', '--fail-on',
                      'none']) == 0
    assert tool.main([str(root), '--num-classes', '10', '--fail-on',
                      'empty_classes']) == 1
    assert 'FAILED (empty_classes)' in capsys.readouterr().out


def test_seg_options(tool, tmp_path, capsys):
    # a flat img/ann pair with other suffixes, reduce_zero_label and RGB
    root = tmp_path / 'ds'
    (root / 'imgs').mkdir(parents=True)
    (root / 'anns').mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        root / 'imgs' / 'x.jpg')
    mask = np.zeros((32, 32), np.uint8)
    mask[:16] = 1
    mask[16:24] = 2
    Image.fromarray(mask).save(root / 'anns' / 'x_gt.png')
    args = ['--seg', str(root), '--img-dir', 'imgs', '--ann-dir', 'anns',
            '--img-suffix', '.jpg', '--seg-map-suffix', '_gt.png']
    out = tmp_path / 'r.json'
    assert tool.main(args + ['--classes', 'a,b', '--reduce-zero-label',
                             '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['counts'] == {'all': dict(a=512, b=256)}
    assert report['split_stats']['all']['ignored'] == 256
    assert report['reduce_zero_label'] is True
    # without it, 2 is out of range; as the ignore index it is fine
    assert tool.main(args + ['--classes', 'a,b']) == 1
    assert "values [2] (256 px)" in capsys.readouterr().out
    assert tool.main(args + ['--classes', 'a,b', '--ignore-index',
                             '2']) == 0
    # an RGB-encoded mask through --palette
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:16] = (200, 10, 10)
    Image.fromarray(rgb).save(root / 'anns' / 'x_gt.png')
    palette = '[[0, 0, 0], [200, 10, 10]]'
    assert tool.main(args + ['--classes', 'a,b', '--palette', palette,
                             '--json', str(out)]) == 0
    assert json.loads(out.read_text())['counts'] == {
        'all': dict(a=512, b=512)}
    assert tool.main(args + ['--classes', 'a,b']) == 1
    assert '(200, 10, 10)' in capsys.readouterr().out


def test_seg_unreadable_layout_exits_two(tool, tmp_path, capsys):
    assert tool.main(['--seg', str(tmp_path), '--num-classes', '2']) == 2
    assert 'img_dir' in capsys.readouterr().err
    root = _seg_root(tmp_path)
    assert tool.main([root]) == 2                         # no classes
    assert '--classes' in capsys.readouterr().err
    assert tool.main([root, '--classes', SEG_NAMES, '--fail-on',
                      'bogus']) == 2
    assert tool.main([root, '--num-classes', '4', '--palette', '[[0,']) == 2
    assert '--palette' in capsys.readouterr().err
    # segmentation options on a classification folder
    cls_root = _folder(tmp_path / 'cls', dict(a=2, b=2))
    assert tool.main([str(cls_root), '--num-classes', '2']) == 2
    assert '--num-classes only apply to segmentation' in \
        capsys.readouterr().err
