"""tools/infer.py and the inference API on a trained checkpoint."""
import csv
import os
import subprocess
import sys

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

import dinov3_mm  # noqa: F401
from dinov3_mm.apis import inference_model, init_model
from dinov3_mm.datasets.synthetic import make_shape_images, write_shape_dataset


def test_infer_writes_csv_and_api_matches(repo_root, tmp_path, shrink_config):
    data = write_shape_dataset(str(tmp_path / 'shapes'), num_per_class=3,
                               size=32)
    cfg = shrink_config(
        Config.fromfile(str(repo_root / 'configs/demo/convnext_shapes.py')),
        data)
    cfg.train_cfg.max_epochs = 1
    cfg.work_dir = str(tmp_path / 'work')
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    Runner.from_cfg(cfg).train()
    ckpt = tmp_path / 'work' / 'epoch_1.pth'

    out = tmp_path / 'preds.csv'
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools' / 'infer.py'), str(cfg_path),
         str(ckpt), os.path.join(data, 'test'), '--out', str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 9
    assert set(rows[0]) >= {'path', 'pred_label', 'pred_class', 'prob_circle'}
    for row in rows:
        probs = [float(row[f'prob_{c}']) for c in ('circle', 'square',
                                                   'triangle')]
        assert abs(sum(probs) - 1) < 1e-3
        assert row['pred_class'] == ('circle', 'square',
                                     'triangle')[int(row['pred_label'])]

    model = init_model(str(cfg_path), str(ckpt))
    first = inference_model(model, rows[0]['path'])[0]
    assert first['pred_label'] == int(rows[0]['pred_label'])
    assert abs(first['pred_score'] - float(rows[0]['pred_score'])) < 1e-4
    from_array = inference_model(model, make_shape_images(2, 32))
    assert len(from_array) == 2
    assert all(np.isclose(sum(p['scores']), 1, atol=1e-3) for p in from_array)
