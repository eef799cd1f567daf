"""Linear probing on cached backbone features.

With a frozen backbone, every epoch of a naive linear probe recomputes the
same features. These loops extract them once (per augmented view), keep them
in memory and train or evaluate only the head. The checkpoints still hold the
whole classifier, so ``tools/test.py`` and deployment use it as usual.

Config::

    train_cfg = dict(type='CachedFeatureTrainLoop', max_epochs=50,
                     num_views=1)
    val_cfg = dict(type='CachedFeatureValLoop')
"""
import logging
import math
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, ValLoop
from torch import Tensor, nn

from dinov3_mm.registry import LOOPS
from dinov3_mm.utils.cpu_bf16 import autocast_or_fp32, parse_dtype
from dinov3_mm.utils.progress import track

Features = Tuple[Tensor, ...]


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def check_frozen_backbone(model: nn.Module) -> None:
    """Cached features are only valid while the backbone cannot change."""
    trainable = [n for n, p in model.backbone.named_parameters()
                 if p.requires_grad]
    if trainable:
        raise ValueError(
            f'Cached-feature linear probing needs a frozen backbone, but '
            f'{len(trainable)} backbone parameters train (e.g. '
            f'{trainable[0]}). Set frozen_stages to the number of blocks / '
            f'stages, or use the plain EpochBasedTrainLoop.')


@torch.no_grad()
def extract_dataloader_features(model: nn.Module, dataloader,
                                autocast_dtype: Optional[torch.dtype] = None,
                                progress: Optional[str] = None
                                ) -> Tuple[Features, List]:
    """Run the data preprocessor and backbone (+neck) over a dataloader.

    Args:
        model (nn.Module): A classifier with ``data_preprocessor`` and
            ``extract_feat``.
        dataloader: Yields mmengine data batches.
        autocast_dtype (torch.dtype, optional): Autocast the extraction.
        progress (str, optional): Label of a progress bar over the batches
            (shown on a terminal of the main process); None: no bar.

    Returns:
        tuple: Per backbone output, one float32 CPU tensor ``(N, C)``; and
        the data samples in the same order.
    """
    model.eval()
    device = next(model.parameters()).device
    chunks: List[Features] = []
    samples: List = []
    if progress is not None and is_main_process():
        dataloader = track(dataloader, progress, unit='batch')
    for data in dataloader:
        data = model.data_preprocessor(data, training=False)
        with autocast_or_fp32(device.type, autocast_dtype,
                              'feature extraction'):
            feats = model.extract_feat(data['inputs'])
        if isinstance(feats, Tensor):
            feats = (feats, )
        chunks.append(tuple(f.float().cpu() for f in feats))
        samples.extend(data['data_samples'])
    features = tuple(torch.cat(parts) for parts in zip(*chunks))
    return features, samples


def feature_batches(features: Features, samples: Sequence, batch_size: int,
                    shuffle: bool, generator: Optional[torch.Generator] = None
                    ) -> Iterator[Tuple[Features, list]]:
    """Mini-batches of cached features and their data samples."""
    n = len(samples)
    order = (torch.randperm(n, generator=generator) if shuffle else
             torch.arange(n))
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield (tuple(f[idx] for f in features),
               [samples[i] for i in idx.tolist()])


@LOOPS.register_module()
class CachedFeatureTrainLoop(EpochBasedTrainLoop):
    """Epoch-based training of the head on features extracted once.

    Args:
        runner: The runner.
        dataloader: Training dataloader (its pipeline, including random
            augmentation, is what gets cached).
        max_epochs (int): Epochs of head training.
        val_begin (int): First epoch that validates. Defaults to 1.
        val_interval (int): Validation interval. Defaults to 1.
        num_views (int): Passes over the training data to cache. With a
            random training pipeline each pass is a different augmented view
            and epoch ``e`` trains on view ``e % num_views``; the extraction
            then costs ``num_views`` passes. Defaults to 1.
        autocast_dtype (str, optional): e.g. ``'bfloat16'`` to extract
            under autocast. Defaults to None (fp32).
        seed (int): Seed of the mini-batch shuffling. Defaults to 0.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 max_epochs: int,
                 val_begin: int = 1,
                 val_interval: int = 1,
                 num_views: int = 1,
                 autocast_dtype: Optional[str] = None,
                 seed: int = 0,
                 **kwargs) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin,
                         val_interval, **kwargs)
        if num_views < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}.')
        self.num_views = num_views
        self.autocast_dtype = parse_dtype(autocast_dtype)
        self.batch_size = self.dataloader.batch_size or 1
        self._max_iters = self._max_epochs * math.ceil(
            len(self.dataloader.dataset) / self.batch_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.views: List[Tuple[Features, list]] = []

    def run(self) -> nn.Module:
        if self.runner.distributed:
            raise ValueError(
                'CachedFeatureTrainLoop runs on one process (head training '
                'on cached features is cheap); launch without torchrun.')
        model = _unwrap(self.runner.model)
        check_frozen_backbone(model)
        for view in range(self.num_views):
            self.views.append(
                extract_dataloader_features(
                    model, self.dataloader, self.autocast_dtype,
                    progress=f'Caching train features (view {view + 1}/'
                    f'{self.num_views})'))
            print_log(
                f'Cached training features, view {view + 1}/'
                f'{self.num_views}: {len(self.views[-1][1])} samples',
                logger='current')
        return super().run()

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        features, samples = self.views[self._epoch % self.num_views]
        for idx, (feats, batch_samples) in enumerate(
                feature_batches(features, samples, self.batch_size, True,
                                self.generator)):
            self.run_iter(idx, dict(inputs=feats,
                                    data_samples=batch_samples))
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx: int, data_batch: dict) -> None:
        self.runner.call_hook(
            'before_train_iter', batch_idx=idx, data_batch=data_batch)
        model = _unwrap(self.runner.model)
        optim_wrapper = self.runner.optim_wrapper
        with optim_wrapper.optim_context(model):
            losses = model.head.loss(data_batch['inputs'],
                                     data_batch['data_samples'])
        parsed, log_vars = model.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=log_vars)
        self._iter += 1


@LOOPS.register_module()
class CachedFeatureValLoop(ValLoop):
    """Validation of the head on features extracted on the first run.

    Valid while the backbone is frozen and the validation pipeline is
    deterministic (the usual case).

    Args:
        runner: The runner.
        dataloader: Validation dataloader.
        evaluator: Evaluator config or instance.
        autocast_dtype (str, optional): As for the train loop.
    """

    def __init__(self, runner, dataloader, evaluator,
                 autocast_dtype: Optional[str] = None, **kwargs) -> None:
        super().__init__(runner, dataloader, evaluator, **kwargs)
        self.autocast_dtype = parse_dtype(autocast_dtype)
        self.cache: Optional[Tuple[Features, list]] = None

    def run(self) -> dict:
        model = _unwrap(self.runner.model)
        check_frozen_backbone(model)
        if self.cache is None:
            self.cache = extract_dataloader_features(
                model, self.dataloader, self.autocast_dtype,
                progress='Caching val features')
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        features, samples = self.cache
        batch_size = self.dataloader.batch_size or 1
        with torch.no_grad():
            for idx, (feats, batch_samples) in enumerate(
                    feature_batches(features, samples, batch_size, False)):
                data_batch = dict(inputs=feats, data_samples=batch_samples)
                self.runner.call_hook(
                    'before_val_iter', batch_idx=idx, data_batch=data_batch)
                outputs = model.head.predict(feats, batch_samples)
                self.evaluator.process(
                    data_samples=outputs, data_batch=data_batch)
                self.runner.call_hook(
                    'after_val_iter',
                    batch_idx=idx,
                    data_batch=data_batch,
                    outputs=outputs)
        metrics = self.evaluator.evaluate(len(samples))
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        print_log(f'Validated on {len(samples)} cached samples',
                  logger='current', level=logging.DEBUG)
        return metrics
