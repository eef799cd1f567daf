"""ResolutionScheduleHook with a real Runner: the training batch size in
pixels follows the schedule, also with persistent dataloader workers."""
import types

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from dinov3_mm.registry import HOOKS, TRANSFORMS
from dinov3_mm_satellite.hooks import ResolutionScheduleHook

CONFIG = 'configs/satellite/vits16_unet_multispectral.py'


class BatchSizeRecorder(Hook):
    """Records ``(epoch, (H, W))`` of every training batch."""

    def __init__(self):
        self.sizes = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        shapes = {tuple(x.shape[-2:]) for x in data_batch['inputs']}
        assert len(shapes) == 1
        self.sizes.append((runner.epoch, shapes.pop()))


def _train_cfg(repo_root, root, work_dir, tiny_arch, workers: int,
               schedule, epochs: int) -> Config:
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.model.backbone.arch = tiny_arch
    cfg.model.neck.in_channels = tiny_arch['embed_dims']
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = root
        loader.num_workers = workers if split == 'train' else 0
        loader.persistent_workers = bool(workers) and split == 'train'
    cfg.train_dataloader.batch_size = 2
    for step in cfg.train_dataloader.dataset.pipeline:  # config size: 40
        if step.type == 'RandomRescale':
            step.scale = 40
        if step.type == 'RandomCropCatRatio':
            step.crop_size = 40
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.custom_hooks = [dict(type='ResolutionScheduleHook',
                             schedule=schedule)]
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.parametrize('workers,schedule,expected', [
    (0, [(1, 32), (2, 48)], {0: {(40, 40)}, 1: {(32, 32)}, 2: {(48, 48)}}),
    (1, [(1, 32)], {0: {(40, 40)}, 1: {(32, 32)}}),
], ids=['main_process', 'persistent_worker'])
def test_batch_pixels_follow_schedule(repo_root, geo_set, tmp_path,
                                      tiny_arch, workers, schedule,
                                      expected):
    """Until the first entry the config's size (40), then the schedule's;
    a persistent worker started in epoch 0 is replaced."""
    cfg = _train_cfg(repo_root, geo_set['root'], tmp_path, tiny_arch,
                     workers, schedule, epochs=len(expected))
    runner = Runner.from_cfg(cfg)
    recorder = BatchSizeRecorder()
    runner.register_hook(recorder)
    runner.train()
    by_epoch = {}
    for epoch, size in recorder.sizes:
        by_epoch.setdefault(epoch, set()).add(size)
    assert by_epoch == expected
    if workers:
        assert runner.train_dataloader.persistent_workers


def test_size_at_and_resume():
    hook = ResolutionScheduleHook(schedule=[(0, 224), (10, (512, 384))])
    assert hook.size_at(0) == (224, 224)
    assert hook.size_at(9) == (224, 224)
    assert hook.size_at(10) == (512, 384)
    assert hook.size_at(37) == (512, 384)
    late = ResolutionScheduleHook(schedule=[(5, 64)])
    assert late.size_at(4) is None


def test_apply_reaches_wrapped_datasets():
    crop = TRANSFORMS.build(dict(type='RandomCropCatRatio', crop_size=16))
    resize = TRANSFORMS.build(dict(type='ResizeKeepRatioPad', size=16))
    inner = types.SimpleNamespace(
        pipeline=types.SimpleNamespace(transforms=[crop, resize]))
    wrapper = types.SimpleNamespace(datasets=[types.SimpleNamespace(
        dataset=inner)])
    hook = HOOKS.build(dict(type='ResolutionScheduleHook',
                            schedule=[(0, 40)]))
    changed = hook.apply(wrapper, (40, 40))
    assert changed == ['RandomCropCatRatio.crop_size',
                       'ResizeKeepRatioPad.size']
    assert crop.crop_size == (40, 40) and resize.size == (40, 40)


def test_schedule_errors():
    with pytest.raises(ValueError, match='strictly increasing'):
        ResolutionScheduleHook(schedule=[(0, 64), (0, 128)])
    with pytest.raises(ValueError, match='empty'):
        ResolutionScheduleHook(schedule=[])
    with pytest.raises(ValueError, match='positive'):
        ResolutionScheduleHook(schedule=[(0, 0)])
    hook = ResolutionScheduleHook(schedule=[(0, 64)])
    with pytest.raises(ValueError, match='needs epoch-based training'):
        hook.before_train(types.SimpleNamespace(train_loop=object()))
    loader = types.SimpleNamespace(dataset=types.SimpleNamespace(
        pipeline=types.SimpleNamespace(transforms=[])))
    runner = types.SimpleNamespace(epoch=0, train_dataloader=loader)
    with pytest.raises(ValueError, match='found none of'):
        hook.before_train_epoch(runner)
