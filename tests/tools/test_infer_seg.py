"""tools/infer.py on a trained segmentor writes masks, overlays, a summary."""
import csv
import os

import numpy as np
from mmengine.runner import Runner
from PIL import Image

import dinov3_mm  # noqa: F401
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset

CLASSES = ('background', 'circle', 'square', 'triangle')


def test_infer_tool_segmentation(tmp_path, tiny_seg_config, run_tool):
    data = write_seg_shapes_dataset(str(tmp_path / 'seg'), num_train=8,
                                    num_val=4, size=32)
    cfg = tiny_seg_config(data, tmp_path / 'work')
    Runner.from_cfg(cfg).train()
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    ckpt = tmp_path / 'work' / 'epoch_1.pth'

    val = os.path.join(data, 'img_dir', 'val')
    names = sorted(os.listdir(val))
    out = tmp_path / 'preds'
    proc = run_tool('infer.py', cfg_path, ckpt, val, '--out', out)
    assert 'Wrote 4 masks' in proc.stdout
    for name in names:
        with Image.open(out / 'masks' / name) as im:
            assert im.mode == 'P'
            mask = np.asarray(im)
        assert mask.shape == (32, 32)
        assert mask.max() < len(CLASSES)
        with Image.open(out / 'overlays' / name) as im:
            assert im.size == (32, 32) and im.mode == 'RGB'
    rows = list(csv.DictReader((out / 'summary.csv').open()))
    assert len(rows) == len(names)
    assert [os.path.basename(r['path']) for r in rows] == names
    assert set(rows[0]) >= {f'frac_{c}' for c in CLASSES}
    for row in rows:
        assert abs(sum(float(row[f'frac_{c}']) for c in CLASSES) - 1) < 1e-4

    # a single image, default output folder, no overlays
    run_tool('infer.py', cfg_path, ckpt, os.path.join(val, names[0]),
             '--no-overlay')
    default = tmp_path / 'seg_predictions'
    assert sorted(os.listdir(default / 'masks')) == [names[0]]
    assert not (default / 'overlays').exists()
