"""tools/infer.py with unreadable images: --skip-unreadable, failing before
work is lost, and the progress bar."""
import csv
import pathlib
import re

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[2]
NO_PROGRESS = {'DINOV3_MM_PROGRESS': None}
PROGRESS = {'DINOV3_MM_PROGRESS': '1'}


def _images(model, folder, bad):
    """Three readable images (``good_0..2.png``) plus ``bad``: name ->
    bytes, or None for a PNG truncated after its header."""
    folder.mkdir()
    good = sorted(pathlib.Path(model['data']).rglob('*.png'))[:3]
    for i, path in enumerate(good):
        (folder / f'good_{i}.png').write_bytes(path.read_bytes())
    for name, content in bad.items():
        if content is None:
            content = good[0].read_bytes()[:60]
        (folder / name).write_bytes(content)
    return folder


def _infer(run_python, model, source, *args, env=None):
    return run_python(args=[REPO / 'tools' / 'infer.py', model['config'],
                            model['checkpoint'], source, *args], env=env)


BAD = {'empty.png': b'', 'notes.jpg': b'this is not a JPEG\n',
       'truncated.png': None}


def test_skip_unreadable_classification(models, tmp_path, run_python):
    folder = _images(models['cls'], tmp_path / 'images', BAD)
    out = tmp_path / 'preds.csv'
    proc = _infer(run_python, models['cls'], folder, '--out', out,
                  '--batch-size', '2', '--skip-unreadable', env=PROGRESS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert [pathlib.Path(r['path']).name for r in rows] == [
        'good_0.png', 'good_1.png', 'good_2.png']
    listed = tmp_path / 'preds.skipped.csv'
    skipped = {pathlib.Path(r['path']).name: r['reason']
               for r in csv.DictReader(listed.open())}
    assert skipped['empty.png'] == 'empty file (0 bytes)'
    assert skipped['notes.jpg'].startswith('not an image file')
    assert 'truncated' in skipped['truncated.png']
    assert set(skipped) == set(BAD)
    for name in BAD:
        assert f'skipped {folder / name}: ' in proc.stderr
    assert f'Skipped 3 unreadable image(s), listed in {listed}' \
        in proc.stderr
    # the progress bar, forced on: 4 readable-looking images in 2 batches
    assert re.search(r'infer: .*\d/2 ', proc.stderr)

    # a later run without unreadable images drops the old list
    for name in BAD:
        (folder / name).unlink()
    proc = _infer(run_python, models['cls'], folder, '--out', out,
                  '--skip-unreadable', env=NO_PROGRESS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not listed.exists()
    assert 'infer: ' not in proc.stderr


def test_unreadable_header_fails_before_the_model(models, tmp_path,
                                                  run_python):
    folder = _images(models['cls'], tmp_path / 'images',
                     {'empty.png': b'', 'notes.jpg': b'not an image'})
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'not a checkpoint')
    out = tmp_path / 'preds.csv'
    proc = _infer(run_python, dict(models['cls'], checkpoint=broken),
                  folder, '--out', out)
    assert proc.returncode == 1
    # the images are checked first: the broken checkpoint is never read
    assert f'error: Cannot read image {folder / "empty.png"}: empty file ' \
        '(0 bytes)' in proc.stderr
    assert f'1 more unreadable: {folder / "notes.jpg"} (not an image' \
        in proc.stderr
    assert 'Nothing was run' in proc.stderr and '--skip-unreadable' \
        in proc.stderr
    assert 'broken.pth' not in proc.stderr and 'Traceback' not in proc.stderr
    assert not out.exists()


def test_truncated_image_keeps_the_results_before_it(models, tmp_path,
                                                     run_python):
    folder = _images(models['cls'], tmp_path / 'images',
                     {'zz_truncated.png': None})
    out = tmp_path / 'preds.csv'
    proc = _infer(run_python, models['cls'], folder, '--out', out,
                  '--batch-size', '3', env=NO_PROGRESS)
    assert proc.returncode == 1
    bad = folder / 'zz_truncated.png'
    assert f'error: Cannot read image {bad}: ' in proc.stderr
    assert f'Results for the 3 images before it are in {out}' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'infer: ' not in proc.stderr  # no bar off a terminal
    rows = list(csv.DictReader(out.open()))
    assert [pathlib.Path(r['path']).name for r in rows] == [
        'good_0.png', 'good_1.png', 'good_2.png']


def test_skip_unreadable_segmentation(models, tmp_path, run_python):
    folder = _images(models['seg'], tmp_path / 'images', BAD)
    listing = tmp_path / 'list.txt'
    listing.write_text('\n'.join(
        [str(p) for p in sorted(folder.iterdir())] +
        [str(folder / 'missing.png')]) + '\n')
    out = tmp_path / 'seg_out'
    proc = _infer(run_python, models['seg'], listing, '--out', out,
                  '--skip-unreadable', env=NO_PROGRESS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (out / 'masks').iterdir()) == [
        'good_0.png', 'good_1.png', 'good_2.png']
    for name in ('good_0.png', 'good_1.png', 'good_2.png'):
        with Image.open(out / 'masks' / name) as mask, \
                Image.open(folder / name) as image:
            assert np.asarray(mask).shape == image.size[::-1]
    summary = list(csv.DictReader((out / 'summary.csv').open()))
    assert len(summary) == 3
    skipped = {pathlib.Path(r['path']).name: r['reason']
               for r in csv.DictReader((out / 'skipped.csv').open())}
    assert set(skipped) == set(BAD) | {'missing.png'}
    assert skipped['missing.png'] == 'file does not exist'
    assert 'Wrote 3 masks' in proc.stdout
