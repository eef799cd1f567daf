"""Save image / ground truth / prediction / error panels of segmentation
validation and test samples as PNG files."""
import logging
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from dinov3_mm.registry import HOOKS


def _to_numpy(value) -> Optional[np.ndarray]:
    if value is None:
        return None
    data = getattr(value, 'data', value)
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    return data


def _undo_pipeline(array: np.ndarray, meta: dict, ori_hw, nearest: bool
                   ) -> np.ndarray:
    """Crop the test pipeline's padding and resize back to ``ori_hw``."""
    top, _, left, _ = meta.get('pad_border', (0, 0, 0, 0))
    h, w = meta.get('img_shape', array.shape[:2])[:2]
    array = array[top:top + h, left:left + w]
    if tuple(array.shape[:2]) != tuple(ori_hw):
        size = (int(ori_hw[1]), int(ori_hw[0]))
        if nearest:  # labels: float32 holds them exactly, cv2 resizes it
            array = cv2.resize(array.astype(np.float32), size,
                               interpolation=cv2.INTER_NEAREST).astype(
                                   array.dtype)
        else:
            array = cv2.resize(array, size, interpolation=cv2.INTER_LINEAR)
    return array


@HOOKS.register_module()
class SegVisHook(Hook):
    """Draw comparison panels of the first validation / test samples.

    For each of the first ``num_samples`` samples of the evaluated set the
    hook writes a :func:`~dinov3_mm.visualization.seg_overlay.compare_panel`
    (image | ground-truth overlay | prediction overlay | error map, with a
    legend of the class colours) to::

        {work_dir}/{out_dir}/val/epoch_{n}/<image name>.png   (validation;
                                      iter_{n} for iteration-based training)
        {work_dir}/{out_dir}/test/<image name>.png            (testing)

    The image is read again from the sample's ``img_path`` (else taken from
    the batch and brought back to its original size); the prediction is the
    segmentor's ``pred_sem_seg`` (at the original size). A ground truth at
    the pipeline's size is re-read with the dataset's
    ``LoadSegAnnotation`` when the sample has a ``seg_map_path``, else cropped
    and resized back. Classes and palette come from the dataset's metainfo.
    Only the main process draws; a drawing error is logged as a warning and
    never stops training.

    Args:
        num_samples (int): Samples drawn per evaluation. Defaults to 8.
        interval (int): Draw every ``interval``-th validation (tests are
            always drawn). Defaults to 1.
        out_dir (str): Folder, relative to the work dir unless absolute.
            Defaults to ``'vis'``.
        alpha (float): Overlay opacity. Defaults to 0.5.
        min_tile_size (int): Small images are enlarged to at least this size
            in the panels. Defaults to 128.
        max_tile_size (int): Large images are shrunk to this size. Defaults
            to 512.
    """
    priority = 'LOW'

    def __init__(self,
                 num_samples: int = 8,
                 interval: int = 1,
                 out_dir: str = 'vis',
                 alpha: float = 0.5,
                 min_tile_size: int = 128,
                 max_tile_size: int = 512) -> None:
        if num_samples < 0:
            raise ValueError(f'SegVisHook num_samples={num_samples} must be '
                             '>= 0.')
        if interval < 1:
            raise ValueError(f'SegVisHook interval={interval} must be >= 1.')
        self.num_samples = num_samples
        self.interval = interval
        self.out_dir = out_dir
        self.alpha = alpha
        self.min_tile_size = min_tile_size
        self.max_tile_size = max_tile_size
        self._val_count = 0
        self._seen = 0
        self._active = False
        self._folder: Optional[str] = None
        self._names: set = set()
        self._failed = False

    # ------------------------------------------------------------ helpers
    def _root(self, runner) -> str:
        return (self.out_dir if osp.isabs(self.out_dir) else osp.join(
            runner.work_dir, self.out_dir))

    @staticmethod
    def _step_name(runner) -> str:
        from mmengine.runner import IterBasedTrainLoop
        loop = getattr(runner, '_train_loop', None)
        if isinstance(loop, IterBasedTrainLoop):
            return f'iter_{runner.iter}'
        return f'epoch_{runner.epoch}'

    def _start(self, runner, split: str, active: bool) -> None:
        self._seen = 0
        self._names = set()
        self._failed = False
        self._active = active and self.num_samples > 0 and is_main_process()
        self._split = split
        if not self._active:
            return
        folder = osp.join(self._root(runner), split)
        if split == 'val':
            folder = osp.join(folder, self._step_name(runner))
        self._folder = folder

    @staticmethod
    def _dataset(runner, split: str):
        loop = getattr(runner, f'_{split}_loop', None)
        loader = getattr(loop, 'dataloader', None)
        return getattr(loader, 'dataset', None)

    def _meta(self, runner, split: str) -> dict:
        dataset = self._dataset(runner, split)
        meta = dict(getattr(dataset, 'metainfo', None) or {})
        if not meta.get('classes'):
            model = getattr(runner.model, 'module', runner.model)
            meta.update(getattr(model, 'dataset_meta', None) or {})
        return meta

    @staticmethod
    def _annotation_loader(dataset):
        pipeline = getattr(dataset, 'pipeline', None)
        for step in getattr(pipeline, 'transforms', None) or []:
            if type(step).__name__ == 'LoadSegAnnotation':
                return step
        return None

    def _ground_truth(self, runner, sample, meta: dict, ori_hw, dataset_meta
                      ) -> Optional[np.ndarray]:
        gt = _to_numpy(sample.get('gt_sem_seg'))
        if gt is None or tuple(gt.shape) == tuple(ori_hw):
            return gt
        path = meta.get('seg_map_path')
        loader = self._annotation_loader(self._dataset(runner, self._split))
        if path and loader is not None:
            results = dict(
                seg_map_path=path,
                reduce_zero_label=meta.get('reduce_zero_label', False),
                palette=dataset_meta.get('palette'),
                num_classes=len(dataset_meta.get('classes') or []) or None,
                seg_fields=[])
            try:
                seg = loader.transform(results)['gt_seg_map']
                if tuple(seg.shape[:2]) == tuple(ori_hw):
                    return np.asarray(seg)
            except Exception:  # fall back to undoing the pipeline
                pass
        return _undo_pipeline(gt, meta, ori_hw, nearest=True)

    @staticmethod
    def _image(inputs, meta: dict, ori_hw) -> np.ndarray:
        path = meta.get('img_path')
        if path and osp.isfile(path):
            from dinov3_mm.datasets.transforms.loading import read_image
            return read_image(path)
        if inputs is None:
            raise ValueError('SegVisHook: sample without img_path or inputs.')
        image = _to_numpy(inputs)
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = np.transpose(image, (1, 2, 0))
        if image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        image = np.clip(image, 0, 255).astype(np.uint8)
        return _undo_pipeline(image, meta, ori_hw, nearest=False)

    def _name(self, meta: dict) -> str:
        path = meta.get('img_path')
        stem = (osp.splitext(osp.basename(path))[0] if path else
                f'{self._seen:05d}')
        name, i = stem, 1
        while name in self._names:
            name, i = f'{stem}_{i}', i + 1
        self._names.add(name)
        return name + '.png'

    def _draw(self, runner, data_batch, outputs: Sequence) -> List[str]:
        from dinov3_mm.visualization.seg_overlay import compare_panel
        dataset_meta = self._meta(runner, self._split)
        classes = dataset_meta.get('classes')
        palette = dataset_meta.get('palette')
        inputs = (data_batch or {}).get('inputs') if isinstance(
            data_batch, dict) else None
        written = []
        for i, sample in enumerate(outputs or []):
            if self._seen >= self.num_samples:
                break
            meta = dict(sample.metainfo)
            pred = _to_numpy(sample.get('pred_sem_seg'))
            if pred is None:
                raise KeyError('SegVisHook: a prediction has no '
                               '`pred_sem_seg`.')
            ori_hw = tuple(meta.get('ori_shape', pred.shape)[:2])
            batch_input = (inputs[i] if inputs is not None
                           and i < len(inputs) else None)
            image = self._image(batch_input, meta, ori_hw)
            gt = self._ground_truth(runner, sample, meta, ori_hw,
                                    dataset_meta)
            hw = image.shape[:2]
            if tuple(pred.shape) != hw:
                pred = cv2.resize(pred.astype(np.float32), (hw[1], hw[0]),
                                  interpolation=cv2.INTER_NEAREST)
            if gt is not None and tuple(gt.shape) != hw:
                gt = cv2.resize(gt.astype(np.float32), (hw[1], hw[0]),
                                interpolation=cv2.INTER_NEAREST)
            panel = compare_panel(
                image, gt, pred.astype(np.int64), palette, classes,
                alpha=self.alpha, min_tile_size=self.min_tile_size,
                max_tile_size=self.max_tile_size)
            os.makedirs(self._folder, exist_ok=True)
            path = osp.join(self._folder, self._name(meta))
            cv2.imwrite(path, panel[..., ::-1])
            written.append(path)
            self._seen += 1
        return written

    def _iter(self, runner, data_batch, outputs) -> None:
        if not self._active or self._failed or self._seen >= self.num_samples:
            return
        try:
            written = self._draw(runner, data_batch, outputs)
        except Exception as exc:  # pictures must never stop a training run
            self._failed = True
            print_log(
                f'SegVisHook: drawing {self._split} samples failed: '
                f'{type(exc).__name__}: {exc}', logger='current',
                level=logging.WARNING)
            return
        if written and self._seen >= self.num_samples:
            print_log(
                f'SegVisHook: saved {self._seen} {self._split} panels to '
                f'{self._folder}', logger='current')

    # -------------------------------------------------------------- hooks
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
