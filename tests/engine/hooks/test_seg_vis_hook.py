"""SegVisHook writes comparison panels during validation and testing."""
import cv2
import numpy as np
import pytest
from mmengine.runner import Runner

import dinov3_mm  # noqa: F401
import dinov3_mm.engine.hooks.seg_vis_hook  # noqa: F401  (registers it)
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset
from dinov3_mm.engine.hooks.seg_vis_hook import SegVisHook
from dinov3_mm.visualization.seg_overlay import (HEADER_HEIGHT, TILE_GAP,
                                                 tile_scale)


def test_seg_vis_hook_writes_val_and_test_panels(tmp_path, tiny_seg_config):
    data = write_seg_shapes_dataset(str(tmp_path / 'seg'), num_train=4,
                                    num_val=4, size=32)
    cfg = tiny_seg_config(data, tmp_path / 'work', batch_size=2)
    cfg.custom_hooks = [dict(type='SegVisHook', num_samples=3)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    runner.test()

    th, tw = tile_scale(32, 32)
    val = tmp_path / 'work' / 'vis' / 'val' / 'epoch_1'
    names = sorted(p.name for p in val.iterdir())
    # 3 samples over two batches of 2, named after the images
    assert names == ['val_00000.png', 'val_00001.png', 'val_00002.png']
    for path in val.iterdir():
        panel = cv2.imread(str(path))
        assert panel.shape[1] == 4 * tw + 3 * TILE_GAP
        assert panel.shape[0] > HEADER_HEIGHT + th
        # the first tile is the image, enlarged 4x
        image = cv2.imread(str(tmp_path / 'seg' / 'img_dir' / 'val' /
                               path.name))
        tile = panel[HEADER_HEIGHT:HEADER_HEIGHT + th, :tw]
        assert np.array_equal(tile, np.repeat(np.repeat(image, 4, 0), 4, 1))
    test = tmp_path / 'work' / 'vis' / 'test'
    assert sorted(p.name for p in test.iterdir()) == names


def test_seg_vis_hook_interval_and_arguments():
    with pytest.raises(ValueError, match='interval'):
        SegVisHook(interval=0)
    with pytest.raises(ValueError, match='num_samples'):
        SegVisHook(num_samples=-1)
    hook = SegVisHook(interval=2)

    class FakeRunner:
        work_dir = '/nonexistent'
        epoch = 3
        iter = 12

    hook.before_val_epoch(FakeRunner())
    assert not hook._active  # first validation, interval 2: skipped
    hook.before_val_epoch(FakeRunner())
    assert hook._active and hook._folder.endswith('vis/val/epoch_3')
