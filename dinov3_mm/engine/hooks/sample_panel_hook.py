"""The shared part of the hooks that save a PNG panel for each of the first
validation / test samples (:class:`SegVisHook`, :class:`DetVisHook`)."""
import logging
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log


class SamplePanelHook(Hook):
    """Save a panel per sample for the first ``num_samples`` evaluated ones.

    Panels go to::

        {work_dir}/{out_dir}/val/epoch_{n}/<image name>.png   (validation;
                                      iter_{n} for iteration-based training)
        {work_dir}/{out_dir}/test/<image name>.png            (testing)

    Subclasses draw one sample in :meth:`panel`. Only the main process
    draws; a drawing error is logged as a warning and never stops training.

    Args:
        num_samples (int): Samples drawn per evaluation.
        interval (int): Draw every ``interval``-th validation (tests are
            always drawn).
        out_dir (str): Folder, relative to the work dir unless absolute.
    """
    priority = 'LOW'

    def __init__(self, num_samples: int, interval: int, out_dir: str) -> None:
        name = type(self).__name__
        if num_samples < 0:
            raise ValueError(f'{name} num_samples={num_samples} must be '
                             '>= 0.')
        if interval < 1:
            raise ValueError(f'{name} interval={interval} must be >= 1.')
        self.num_samples = num_samples
        self.interval = interval
        self.out_dir = out_dir
        self._val_count = 0
        self._seen = 0
        self._active = False
        self._failed = False
        self._folder: Optional[str] = None
        self._names: set = set()
        self._split = 'val'

    def panel(self, runner, sample, batch_input, dataset_meta: dict
              ) -> np.ndarray:
        """The RGB uint8 panel of one predicted sample.

        Args:
            runner: The runner.
            sample: The model's output data sample.
            batch_input: The sample's preprocessed input from the batch, or
                None.
            dataset_meta (dict): The evaluated dataset's metainfo (classes
                from the model's ``dataset_meta`` where the dataset has none).
        """
        raise NotImplementedError

    def _start(self, runner, split: str, active: bool) -> None:
        self._seen, self._names, self._failed = 0, set(), False
        self._split = split
        self._active = active and self.num_samples > 0 and is_main_process()
        root = (self.out_dir if osp.isabs(self.out_dir) else osp.join(
            runner.work_dir, self.out_dir))
        folder = osp.join(root, split)
        if split == 'val':
            from mmengine.runner import IterBasedTrainLoop
            loop = getattr(runner, '_train_loop', None)
            folder = osp.join(folder, f'iter_{runner.iter}' if isinstance(
                loop, IterBasedTrainLoop) else f'epoch_{runner.epoch}')
        self._folder = folder

    def _dataset(self, runner):
        loop = getattr(runner, f'_{self._split}_loop', None)
        return getattr(getattr(loop, 'dataloader', None), 'dataset', None)

    def _dataset_meta(self, runner) -> dict:
        meta = dict(getattr(self._dataset(runner), 'metainfo', None) or {})
        if not meta.get('classes'):
            model = getattr(runner.model, 'module', runner.model)
            meta.update(getattr(model, 'dataset_meta', None) or {})
        return meta

    def _name(self, meta: dict) -> str:
        path = meta.get('img_path')
        stem = (osp.splitext(osp.basename(path))[0] if path else
                f'{self._seen:05d}')
        name, i = stem, 1
        while name in self._names:
            name, i = f'{stem}_{i}', i + 1
        self._names.add(name)
        return name + '.png'

    def _draw(self, runner, data_batch, outputs: Sequence) -> int:
        """Write the panels of ``outputs`` until ``num_samples`` are saved."""
        dataset_meta = self._dataset_meta(runner)
        inputs = (data_batch.get('inputs') if isinstance(data_batch, dict)
                  else None)
        drawn = 0
        for i, sample in enumerate(outputs or []):
            if self._seen >= self.num_samples:
                break
            batch_input = (inputs[i] if inputs is not None
                           and i < len(inputs) else None)
            panel = self.panel(runner, sample, batch_input, dataset_meta)
            os.makedirs(self._folder, exist_ok=True)
            cv2.imwrite(osp.join(self._folder, self._name(sample.metainfo)),
                        panel[..., ::-1])
            self._seen += 1
            drawn += 1
        return drawn

    def _iter(self, runner, data_batch, outputs) -> None:
        if not self._active or self._failed or self._seen >= self.num_samples:
            return
        name = type(self).__name__
        try:
            drawn = self._draw(runner, data_batch, outputs)
        except Exception as exc:  # pictures must never stop a training run
            self._failed = True
            print_log(f'{name}: drawing {self._split} samples failed: '
                      f'{type(exc).__name__}: {exc}', logger='current',
                      level=logging.WARNING)
            return
        if drawn and self._seen >= self.num_samples:
            print_log(f'{name}: saved {self._seen} {self._split} panels to '
                      f'{self._folder}', logger='current')

    def before_val_epoch(self, runner) -> None:
        """Start a validation; draw it when it is an ``interval``-th one."""
        self._val_count += 1
        self._start(runner, 'val', self._val_count % self.interval == 0)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs: Optional[Sequence] = None) -> None:
        """Draw the batch's samples until ``num_samples`` are drawn."""
        self._iter(runner, data_batch, outputs)

    def before_test_epoch(self, runner) -> None:
        """Start a test run."""
        self._start(runner, 'test', True)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        """Draw the batch's samples until ``num_samples`` are drawn."""
        self._iter(runner, data_batch, outputs)
