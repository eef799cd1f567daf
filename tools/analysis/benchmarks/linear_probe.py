"""Cost of a cached-feature linear probe against one feature-extraction pass."""
import copy
import tempfile
import time
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.runner import Runner

from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.engine.runner.cached_feature_loops import \
    extract_dataloader_features


def _runner(cfg: Config, work_dir: str, **train_cfg) -> Runner:
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg.update(train_cfg)
    cfg.work_dir = work_dir
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger.interval = 50
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return Runner.from_cfg(cfg)


def benchmark_linear_probe(config: str,
                           images_per_class: int = 100,
                           epochs: int = 50,
                           img_size: int = 224,
                           data_root: Optional[str] = None) -> Dict[str, float]:
    """Time a cached linear probe, one extraction pass and one naive epoch.

    Args:
        config (str): A linear-probe config (``CachedFeatureTrainLoop``).
        images_per_class (int): Training images per class of the generated
            shapes dataset. Defaults to 100.
        epochs (int): Probe epochs. Defaults to 50.
        img_size (int): Input size. Defaults to 224.
        data_root (str, optional): Use this ImageFolder instead.

    Returns:
        dict: seconds of one extraction pass, of the whole probe (its own
        extraction included) and of one naive epoch; the probe / extraction
        ratio and the naive-probe estimate (epochs x one naive epoch).
    """
    with tempfile.TemporaryDirectory() as tmp:
        if data_root is None:
            data_root = write_shape_dataset(
                f'{tmp}/shapes', size=img_size,
                per_split=dict(train=images_per_class), splits=('train', ))
        cfg = Config.fromfile(config)
        cfg.train_dataloader.dataset.data_root = data_root
        cfg.train_dataloader.persistent_workers = False

        runner = _runner(cfg, f'{tmp}/probe', max_epochs=epochs)
        start = time.perf_counter()
        extract_dataloader_features(runner.model, runner.train_dataloader,
                                    runner.train_loop.autocast_dtype)
        extract_s = time.perf_counter() - start

        start = time.perf_counter()
        runner.train()
        probe_s = time.perf_counter() - start

        naive_cfg = copy.deepcopy(cfg)
        naive_cfg.train_cfg = dict(by_epoch=True, max_epochs=1)
        naive = _runner(naive_cfg, f'{tmp}/naive')
        start = time.perf_counter()
        naive.train()
        naive_epoch_s = time.perf_counter() - start
    return dict(
        images=len(runner.train_dataloader.dataset),
        epochs=epochs,
        extract_s=round(extract_s, 2),
        probe_s=round(probe_s, 2),
        probe_over_extract=round(probe_s / extract_s, 3),
        naive_epoch_s=round(naive_epoch_s, 2),
        naive_probe_estimate_s=round(naive_epoch_s * epochs, 1),
    )
