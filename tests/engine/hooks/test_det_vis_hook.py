"""DetVisHook draws ground truth | prediction panels of evaluated samples."""
import os.path as osp
import sys

import cv2
import pytest
from mmengine.dataset import pseudo_collate

from dinov3_mm.apis import init_model
from dinov3_mm.engine.hooks.det_vis_hook import DetVisHook, draw_instances
from dinov3_mm.registry import DATASETS, HOOKS

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..',
                            'deploy'))
from det_helpers import make_det_checkpoint  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore')


class FakeRunner:
    """What the hook reads from a Runner."""

    def __init__(self, work_dir, model, dataset):
        self.work_dir = work_dir
        self.model = model
        self.epoch, self.iter = 2, 10

        class Loader:
            pass

        loader = Loader()
        loader.dataset = dataset
        self._val_loop = self._test_loop = type('Loop', (), dict(
            dataloader=loader))()


@pytest.mark.parametrize('with_mask', [False, True])
def test_panels_for_val_and_test(tmp_path, with_mask):
    ckpt = make_det_checkpoint(str(tmp_path), with_mask=with_mask)
    model = init_model(ckpt['config'], ckpt['checkpoint'])
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    runner = FakeRunner(str(tmp_path / 'work'), model, dataset)
    hook = HOOKS.build(dict(type='DetVisHook', num_samples=3, score_thr=0.0,
                            min_tile_size=128))
    for split in ('val', 'test'):
        getattr(hook, f'before_{split}_epoch')(runner)
        for start in (0, 2):  # two batches of 2, only 3 samples drawn
            batch = pseudo_collate([dataset[i] for i in
                                    range(start, min(start + 2, 3))])
            outputs = model.test_step(batch)
            getattr(hook, f'after_{split}_iter')(runner, 0, batch, outputs)
    val = tmp_path / 'work' / 'vis' / 'val' / 'epoch_2'
    names = sorted(p.name for p in val.iterdir())
    assert names == ['test_00000.png', 'test_00001.png', 'test_00002.png']
    for path in val.iterdir():
        panel = cv2.imread(str(path))
        # ground truth | prediction, each 64 px enlarged to 128
        assert panel.shape[1] == 2 * 128 + 4 and panel.shape[0] > 128
    test = tmp_path / 'work' / 'vis' / 'test'
    assert sorted(p.name for p in test.iterdir()) == names
    assert not hook._failed


def test_arguments_interval_and_drawing():
    with pytest.raises(ValueError, match='interval'):
        DetVisHook(interval=0)
    with pytest.raises(ValueError, match='num_samples'):
        DetVisHook(num_samples=-1)
    hook = DetVisHook(interval=2)
    runner = type('R', (), dict(work_dir='/nonexistent', epoch=1, iter=5))()
    hook.before_val_epoch(runner)
    assert not hook._active
    hook.before_val_epoch(runner)
    assert hook._active and hook._folder.endswith('vis/val/epoch_1')
    import numpy as np
    image = np.zeros((40, 50, 3), np.uint8)
    masks = np.zeros((2, 40, 50), bool)
    masks[0, 5:20, 5:30] = True
    drawn = draw_instances(image, [[5, 5, 30, 20], [35, 25, 48, 38]], [0, 1],
                           [0.9, 0.1], masks, ['a', 'b'], score_thr=0.5)
    assert drawn.shape == image.shape and drawn[10, 10].any()
    assert not drawn[24:40, 34:50].any()  # below the threshold: not drawn
    assert not image.any()  # the input is left alone
