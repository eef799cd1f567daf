"""tools/infer.py on a detection config: drawn PNGs and a COCO JSON."""
import json
import os.path as osp
import sys

import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..',
                            'deploy'))
from det_helpers import make_det_checkpoint  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore')


def test_infer_writes_pictures_and_coco_json(tmp_path, run_python,
                                             repo_root):
    ckpt = make_det_checkpoint(str(tmp_path / 'model'), with_mask=True)
    # COCO category ids that are not label + 1
    state = torch.load(ckpt['checkpoint'], weights_only=True)
    state['meta']['dataset_meta']['cat_ids'] = [11, 12, 13, 14]
    torch.save(state, ckpt['checkpoint'])
    out = tmp_path / 'preds'
    proc = run_python(args=[
        repo_root / 'tools/infer.py', ckpt['config'], ckpt['checkpoint'],
        osp.join(ckpt['data'], 'test'), '--out', out, '--score-thr', '0'
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Wrote 96 detections of 3 images' in proc.stdout
    names = sorted(p.name for p in (out / 'vis').iterdir())
    assert names == ['test_00000.png', 'test_00001.png', 'test_00002.png']
    assert Image.open(out / 'vis' / names[0]).size == (64, 64)
    coco = COCO(str(out / 'predictions.json'))
    assert sorted(coco.getCatIds()) == [11, 12, 13, 14]
    assert [c['name'] for c in coco.loadCats([11, 12, 13, 14])] == \
        ckpt['classes']
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(anns) == 32
    assert {a['category_id'] for a in anns} <= {11, 12, 13, 14}
    assert coco.annToMask(anns[0]).shape == (64, 64)
    data = json.load(open(out / 'predictions.json'))
    assert [osp.basename(i['file_name']) for i in data['images']] == names
