"""Draw every test prediction on its image (``tools/test.py --show-dir``)."""
import logging
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log

from dinov3_mm.registry import HOOKS


@HOOKS.register_module()
class PredDrawHook(Hook):
    """Save a picture of each test prediction.

    Pictures come from
    :func:`~dinov3_mm.visualization.packed_samples.draw_prediction`:
    classification images captioned with the predicted class, its score and
    the true class; segmentation panels of image, ground truth, prediction
    and errors. Each goes to ``out_dir`` under the image's path relative to
    the dataset's ``data_root`` (so class folders are kept), as ``.png``.
    The image is read again from ``img_path`` at its original size (else
    taken from the batch). Every process draws its own samples.

    Args:
        out_dir (str): Folder of the pictures; relative paths are taken
            from the work dir.
        max_samples (int, optional): Stop after this many pictures per
            process. Defaults to None (all).
    """
    priority = 'LOW'

    def __init__(self, out_dir: str, max_samples: Optional[int] = None
                 ) -> None:
        if max_samples is not None and max_samples < 0:
            raise ValueError(f'PredDrawHook max_samples={max_samples} must '
                             'be >= 0.')
        self.out_dir = out_dir
        self.max_samples = max_samples
        self._count = 0
        self._warned = False
        self._names: set = set()

    def before_test_epoch(self, runner) -> None:
        """Reset the counters and find the dataset's classes and root."""
        self._count = 0
        self._warned = False
        self._names = set()
        self._root = (self.out_dir if osp.isabs(self.out_dir) else osp.join(
            runner.work_dir, self.out_dir))
        loader = getattr(runner.test_loop, 'dataloader', None)
        dataset = getattr(loader, 'dataset', None)
        meta = dict(getattr(dataset, 'metainfo', None) or {})
        self._classes = meta.get('classes')
        self._palette = meta.get('palette')
        self._data_root = getattr(dataset, 'data_root', None)

    def _relative_name(self, path: Optional[str]) -> str:
        if not path:
            name = f'{self._count:06d}'
        else:
            root = self._data_root
            inside = root and osp.abspath(path).startswith(
                osp.abspath(root) + os.sep)
            name = (osp.relpath(path, root) if inside else
                    osp.basename(path))
            name = osp.splitext(name)[0]
        unique, i = name, 1
        while unique in self._names:
            unique, i = f'{name}_{i}', i + 1
        self._names.add(unique)
        return unique + '.png'

    @staticmethod
    def _image(sample, batch_input) -> np.ndarray:
        path = sample.metainfo.get('img_path')
        if path and osp.isfile(path):
            from dinov3_mm.datasets.transforms.loading import read_image
            return read_image(path)
        from dinov3_mm.visualization.packed_samples import inputs_to_image
        if batch_input is None:
            raise ValueError('a sample without img_path or inputs')
        return inputs_to_image(batch_input)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        """Draw the batch's predictions."""
        if self._warned:
            return
        from dinov3_mm.visualization.packed_samples import draw_prediction
        inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                        dict) else None
        try:
            for i, sample in enumerate(outputs or []):
                if (self.max_samples is not None
                        and self._count >= self.max_samples):
                    return
                batch_input = (inputs[i] if isinstance(inputs, (list, tuple))
                               and i < len(inputs) else None)
                picture = draw_prediction(self._image(sample, batch_input),
                                          sample, self._classes,
                                          self._palette)
                path = osp.join(self._root, self._relative_name(
                    sample.metainfo.get('img_path')))
                os.makedirs(osp.dirname(path), exist_ok=True)
                if not cv2.imwrite(path, picture[..., ::-1]):
                    raise OSError(f'cannot write {path}')
                self._count += 1
        except Exception as exc:  # pictures never stop an evaluation
            self._warned = True
            print_log(f'PredDrawHook: drawing test predictions failed: '
                      f'{type(exc).__name__}: {exc}', logger='current',
                      level=logging.WARNING)

    def after_test_epoch(self, runner, metrics=None) -> None:
        """Say where the pictures went."""
        if self._count:
            print_log(f'PredDrawHook: saved {self._count} pictures of test '
                      f'predictions to {self._root}', logger='current')
