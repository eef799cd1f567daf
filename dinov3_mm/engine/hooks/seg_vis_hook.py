"""Save image / ground truth / prediction / error panels of segmentation
validation and test samples as PNG files."""
import os.path as osp
from typing import Optional

import cv2
import numpy as np

from dinov3_mm.registry import HOOKS

from .sample_panel_hook import SamplePanelHook


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
class SegVisHook(SamplePanelHook):
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
    def __init__(self,
                 num_samples: int = 8,
                 interval: int = 1,
                 out_dir: str = 'vis',
                 alpha: float = 0.5,
                 min_tile_size: int = 128,
                 max_tile_size: int = 512) -> None:
        super().__init__(num_samples, interval, out_dir)
        self.alpha = alpha
        self.min_tile_size = min_tile_size
        self.max_tile_size = max_tile_size

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
        loader = self._annotation_loader(self._dataset(runner))
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

    def panel(self, runner, sample, batch_input, dataset_meta: dict
              ) -> np.ndarray:
        """The image | ground truth | prediction | errors panel of a sample."""
        from dinov3_mm.visualization.seg_overlay import compare_panel
        meta = dict(sample.metainfo)
        pred = _to_numpy(sample.get('pred_sem_seg'))
        if pred is None:
            raise KeyError('SegVisHook: a prediction has no `pred_sem_seg`.')
        ori_hw = tuple(meta.get('ori_shape', pred.shape)[:2])
        image = self._image(batch_input, meta, ori_hw)
        gt = self._ground_truth(runner, sample, meta, ori_hw, dataset_meta)
        hw = image.shape[:2]
        if tuple(pred.shape) != hw:
            pred = cv2.resize(pred.astype(np.float32), (hw[1], hw[0]),
                              interpolation=cv2.INTER_NEAREST)
        if gt is not None and tuple(gt.shape) != hw:
            gt = cv2.resize(gt.astype(np.float32), (hw[1], hw[0]),
                            interpolation=cv2.INTER_NEAREST)
        return compare_panel(
            image, gt, pred.astype(np.int64), dataset_meta.get('palette'),
            dataset_meta.get('classes'), alpha=self.alpha,
            min_tile_size=self.min_tile_size,
            max_tile_size=self.max_tile_size)
