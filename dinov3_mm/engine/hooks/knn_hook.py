"""k-NN accuracy of a backbone during (self-supervised) training."""
import copy
import logging
import time
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import DefaultScope
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler

from dinov3_mm.registry import HOOKS, MODELS

DEFAULT_PREPROCESSOR = dict(type='ClsDataPreprocessor',
                            normalization='lvd1689m')


def resolve_module(model: nn.Module, path: Optional[str]) -> nn.Module:
    """The submodule of ``model`` at the dotted attribute ``path``.

    A model wrapper (DDP, FSDP...) is unwrapped first; ``None`` or ``''``
    means the model itself.

    Raises:
        AttributeError: A part of the path is missing; the message names it
            and lists the model's top-level children.
        TypeError: The path leads to something that is not a module.
    """
    if is_model_wrapper(model):
        model = model.module
    module = model
    if path:
        walked = []
        for part in path.split('.'):
            if not hasattr(module, part):
                children = [name for name, _ in model.named_children()]
                where = (f'{type(module).__name__} at '
                         f'{".".join(walked)!r}' if walked else
                         type(model).__name__)
                raise AttributeError(
                    f'KNNEvalHook: backbone path {path!r} not found: '
                    f'{where} has no attribute {part!r}. Top-level children '
                    f'of {type(model).__name__}: {children}.')
            module = getattr(module, part)
            walked.append(part)
    if not isinstance(module, nn.Module):
        raise TypeError(f'KNNEvalHook: backbone path {path!r} leads to a '
                        f'{type(module).__name__}, not an nn.Module.')
    return module


@HOOKS.register_module()
class KNNEvalHook(Hook):
    """Weighted k-NN accuracy of a backbone's class token while training.

    The DINO k-NN protocol (:func:`~dinov3_mm.evaluation.functional.knn_accuracy`):
    class-token features of ``train_dataloader`` form the reference set,
    every image of ``val_dataloader`` is classified by the cosine-weighted
    vote of its ``k`` nearest references. The backbone is read at the dotted
    attribute path ``backbone`` of the runner's model (a DDP wrapper is
    unwrapped), e.g. ``'backbone'`` for a classifier or
    ``'teacher.backbone'`` for a DINO-style student/teacher model.

    Evaluation happens before training (``before_train``), after every
    ``interval`` epochs (``by_epoch=True``) or iterations, and after the last
    one. Results go to

    * ``runner.message_hub`` scalars ``knn/top1`` (and ``knn/top5`` with at
      least 5 classes);
    * the visualizer (``add_scalars``: ``vis_data/scalars.json``,
      TensorBoard...), with ``step`` the epoch (or iteration) just done, 0
      before training;
    * a log line, and :attr:`history`, a list of ``(step, metrics)``.

    The dataloaders are ordinary mmengine dataloader configs (e.g. an
    ``ImageFolderDataset`` with a ``PackClsInputs`` pipeline, no random
    augmentation), built once on first use. Their sampler is replaced by a
    sequential sampler over the whole dataset and ``num_batch_per_epoch`` is
    ignored: in distributed training every rank extracts and classifies the
    full sets itself (simple and exact; meant for small evaluation sets),
    and only the main process writes to the visualizer. A ready
    ``DataLoader`` may be given instead of a config; it is used as is.

    Args:
        train_dataloader (dict): Dataloader config of the labelled reference
            (k-NN "training") set.
        val_dataloader (dict): Dataloader config of the labelled set to
            classify.
        backbone (str): Dotted attribute path of the backbone on the model.
            Defaults to ``'backbone'``.
        data_preprocessor (dict | nn.Module, optional): Normalises the
            batches; a dict is built from ``MODELS``. Defaults to
            ``dict(type='ClsDataPreprocessor', normalization='lvd1689m')``.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        interval (int): Evaluate every ``interval`` epochs / iterations.
            Defaults to 1.
        by_epoch (bool): Count ``interval`` in epochs (else iterations).
            Defaults to True.
        before_train (bool): Also evaluate before the first iteration.
            Defaults to True.
        autocast_dtype (str, optional): e.g. ``'bfloat16'`` to extract
            features under autocast. Defaults to None (float32).
        prefix (str): Name of the logged scalars, ``<prefix>/top1``; give
            two hooks (e.g. student and teacher) different prefixes.
            Defaults to ``'knn'``.
    """
    priority = 'NORMAL'

    def __init__(self,
                 train_dataloader: Union[dict, DataLoader],
                 val_dataloader: Union[dict, DataLoader],
                 backbone: str = 'backbone',
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 k: int = 20,
                 temperature: float = 0.07,
                 interval: int = 1,
                 by_epoch: bool = True,
                 before_train: bool = True,
                 autocast_dtype: Optional[str] = None,
                 prefix: str = 'knn') -> None:
        from dinov3_mm.utils.cpu_bf16 import parse_dtype
        if interval < 1:
            raise ValueError(f'KNNEvalHook interval={interval} must be >= 1.')
        if k < 1:
            raise ValueError(f'KNNEvalHook k={k} must be >= 1.')
        if temperature <= 0:
            raise ValueError(
                f'KNNEvalHook temperature={temperature} must be > 0.')
        parse_dtype(autocast_dtype)  # fail early on a bad name
        self.train_dataloader_cfg = train_dataloader
        self.val_dataloader_cfg = val_dataloader
        self.backbone = backbone
        self.prefix = prefix
        self.data_preprocessor_cfg = (
            DEFAULT_PREPROCESSOR if data_preprocessor is None else
            data_preprocessor)
        self.k = k
        self.temperature = temperature
        self.interval = interval
        self.by_epoch = by_epoch
        self.eval_before_train = before_train
        self.autocast_dtype = autocast_dtype
        self.history: List[Tuple[int, Dict[str, float]]] = []
        self._loaders: Optional[Tuple[DataLoader, DataLoader]] = None
        self._preprocessor: Optional[nn.Module] = None

    # ------------------------------------------------------------ building
    @staticmethod
    def _build_loader(cfg: Union[dict, DataLoader], seed) -> DataLoader:
        from mmengine.runner import Runner

        from dinov3_mm.registry import DATASETS
        if isinstance(cfg, DataLoader):
            return cfg
        cfg = copy.deepcopy(dict(cfg))
        cfg.pop('num_batch_per_epoch', None)
        cfg.pop('batch_sampler', None)
        dataset = cfg['dataset']
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
            if hasattr(dataset, 'full_init'):
                dataset.full_init()
        cfg['dataset'] = dataset
        cfg['sampler'] = SequentialSampler(dataset)
        cfg.setdefault('batch_size', 1)
        return Runner.build_dataloader(cfg, seed=seed)

    def _build(self, runner) -> None:
        if self._loaders is not None:
            return
        scope = None if DefaultScope.get_current_instance() else 'dinov3_mm'
        seed = getattr(runner, 'seed', None)
        with DefaultScope.overwrite_default_scope(scope):
            self._loaders = (
                self._build_loader(self.train_dataloader_cfg, seed),
                self._build_loader(self.val_dataloader_cfg, seed))
            cfg = self.data_preprocessor_cfg
            self._preprocessor = (MODELS.build(copy.deepcopy(cfg))
                                  if isinstance(cfg, dict) else cfg)

    @staticmethod
    def _classes(loader: DataLoader) -> Optional[tuple]:
        metainfo = getattr(loader.dataset, 'metainfo', None) or {}
        classes = metainfo.get('classes')
        return tuple(classes) if classes else None

    def _num_classes(self, train_labels, val_labels) -> int:
        train_classes, val_classes = (self._classes(loader)
                                      for loader in self._loaders)
        if train_classes and val_classes and train_classes != val_classes:
            raise ValueError(
                'KNNEvalHook: the train and val datasets index different '
                f'classes ({list(train_classes)} vs {list(val_classes)}); '
                'give both the same `classes`.')
        largest = int(max(train_labels.max(), val_labels.max())) + 1
        classes = train_classes or val_classes
        return max(len(classes), largest) if classes else largest

    # ---------------------------------------------------------- evaluation
    def evaluate(self, runner, step: int) -> Dict[str, float]:
        """Extract features, run the k-NN vote and log the accuracies.

        Args:
            runner: The runner (its model holds the backbone).
            step (int): Epoch or iteration the result is logged at.

        Returns:
            dict: ``knn/top1`` (and ``knn/top5``) in percent.
        """
        from dinov3_mm.evaluation import extract_cls_features, knn_accuracy
        backbone = resolve_module(runner.model, self.backbone)
        self._build(runner)
        train_loader, val_loader = self._loaders
        start = time.perf_counter()
        shown = is_main_process()
        train_feats, train_labels = extract_cls_features(
            backbone, train_loader, self._preprocessor, self.autocast_dtype,
            progress='k-NN: reference features' if shown else None)
        val_feats, val_labels = extract_cls_features(
            backbone, val_loader, self._preprocessor, self.autocast_dtype,
            progress='k-NN: query features' if shown else None)
        param = next(backbone.parameters(), None)
        device = param.device if param is not None else torch.device('cpu')
        result = knn_accuracy(
            train_feats.to(device), train_labels.to(device), val_feats,
            val_labels, self._num_classes(train_labels, val_labels),
            k=self.k, temperature=self.temperature)
        metrics = {f'{self.prefix}/{key}': value
                   for key, value in result.items()}
        for key, value in metrics.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(metrics, step=step)
        self.history.append((step, metrics))
        unit = 'epoch' if self.by_epoch else 'iter'
        values = ', '.join(f'{key}: {value:.2f}'
                           for key, value in metrics.items())
        print_log(
            f'KNNEvalHook ({unit} {step}): {values} (k={self.k}, '
            f'T={self.temperature}, {len(train_labels)} reference / '
            f'{len(val_labels)} query images, backbone {self.backbone!r}, '
            f'{time.perf_counter() - start:.1f}s)', logger='current')
        return metrics

    # --------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        """Evaluate the backbone as it starts (fresh or resumed)."""
        from mmengine.runner import IterBasedTrainLoop
        if self.by_epoch and isinstance(getattr(runner, 'train_loop', None),
                                        IterBasedTrainLoop):
            print_log(
                'KNNEvalHook: by_epoch=True but the train loop is iteration '
                'based, so it only evaluates before training; set '
                'by_epoch=False.', logger='current',
                level=logging.WARNING)
        if self.eval_before_train:
            self.evaluate(runner,
                          runner.epoch if self.by_epoch else runner.iter)

    def after_train_epoch(self, runner) -> None:
        """Evaluate every ``interval`` epochs and after the last one."""
        if not self.by_epoch:
            return
        if (self.every_n_epochs(runner, self.interval)
                or self.is_last_train_epoch(runner)):
            self.evaluate(runner, runner.epoch + 1)

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch=None, outputs=None) -> None:
        """Evaluate every ``interval`` iterations and after the last one."""
        if self.by_epoch:
            return
        if (self.every_n_train_iters(runner, self.interval)
                or self.is_last_train_iter(runner)):
            self.evaluate(runner, runner.iter + 1)


__all__ = ['KNNEvalHook', 'resolve_module']
