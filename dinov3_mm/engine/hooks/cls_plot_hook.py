"""Save confusion matrix, ROC / PR curves and training curves as PNG files."""
import logging
import os.path as osp
from typing import Dict, List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.visualization import LocalVisBackend

from dinov3_mm.registry import HOOKS


@HOOKS.register_module()
class ClsPlotHook(Hook):
    """Draw classification pictures after evaluation and training.

    Files (``<out>`` is ``out_dir`` or ``{work_dir}/plots``):

    * after every ``interval``-th validation:
      ``<out>/val/confusion_matrix.png``, ``roc.png``, ``pr.png``
      (overwritten each time, so they show the latest epoch) and
      ``<out>/training_curves.png``;
    * after testing: the same three pictures in ``<out>/test/``;
    * after training: ``<out>/training_curves.png``.

    The pictures use the predictions kept by each metric with a
    ``last_results`` attribute (:class:`~dinov3_mm.evaluation.ClsMetric`);
    nothing is recomputed. Training curves are read from the
    ``LocalVisBackend``'s ``scalars.json``. Only the main process draws;
    a plotting error is logged as a warning and never stops training.
    The hook runs after ``LoggerHook`` (priority ``LOW``), so the curves
    include the epoch just evaluated.

    Args:
        interval (int): Draw after every ``interval``-th validation.
            Defaults to 1.
        out_dir (str, optional): Root folder of the pictures. Defaults to
            ``{work_dir}/plots``.
        normalize (bool): Row-normalise the confusion matrix. Defaults to
            True.
        curves_after_val (bool): Also redraw the training curves after each
            drawn validation. Defaults to True.
    """
    priority = 'LOW'

    def __init__(self,
                 interval: int = 1,
                 out_dir: Optional[str] = None,
                 normalize: bool = True,
                 curves_after_val: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'ClsPlotHook interval={interval} must be >= 1.')
        self.interval = interval
        self.out_dir = out_dir
        self.normalize = normalize
        self.curves_after_val = curves_after_val
        self._val_count = 0

    # ------------------------------------------------------------ helpers
    def _root(self, runner) -> str:
        return self.out_dir or osp.join(runner.work_dir, 'plots')

    @staticmethod
    def _metrics_with_results(evaluator) -> List:
        metrics = getattr(evaluator, 'metrics', None) or []
        return [m for m in metrics if getattr(m, 'last_results', None)]

    def _plot_eval(self, runner, evaluator, split: str) -> List[str]:
        from dinov3_mm.evaluation.functional import confusion_matrix
        from dinov3_mm.visualization.cls_plots import (plot_confusion_matrix,
                                                       plot_pr_curves,
                                                       plot_roc_curves)
        metrics = self._metrics_with_results(evaluator)
        if not metrics:
            print_log(
                f'ClsPlotHook: no {split} metric keeps predictions '
                '(`last_results`); add ClsMetric to the evaluator to get '
                'confusion matrix, ROC and PR pictures.', logger='current',
                level=logging.WARNING)
            return []
        written = []
        for idx, metric in enumerate(metrics):
            res: Dict = metric.last_results
            folder = osp.join(self._root(runner), split)
            prefix = getattr(metric, 'prefix', None)
            if prefix or len(metrics) > 1:
                folder = osp.join(folder, prefix or f'metric{idx}')
            classes = res.get('classes')
            scores, labels = res.get('scores'), res['labels']
            if not res.get('multi_label'):
                cm = confusion_matrix(res['preds'], labels,
                                      res['num_classes'])
                written.append(
                    plot_confusion_matrix(
                        cm, classes, osp.join(folder, 'confusion_matrix.png'),
                        normalize=self.normalize))
            if scores is not None:
                written.append(
                    plot_roc_curves(scores, labels, classes,
                                    osp.join(folder, 'roc.png')))
                written.append(
                    plot_pr_curves(scores, labels, classes,
                                   osp.join(folder, 'pr.png')))
        return written

    @staticmethod
    def scalars_path(runner) -> Optional[str]:
        """The ``scalars.json`` of the runner's ``LocalVisBackend``, if any."""
        visualizer = getattr(runner, 'visualizer', None)
        backends = getattr(visualizer, '_vis_backends', {}) or {}
        for backend in backends.values():
            if isinstance(backend, LocalVisBackend):
                path = backend._scalar_save_file
                if not osp.isabs(path):  # environment not initialised yet
                    path = osp.join(backend._save_dir, path)
                return path
        path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
        return path if osp.isfile(path) else None

    def _plot_curves(self, runner) -> List[str]:
        from dinov3_mm.visualization.curves import plot_training_curves
        path = self.scalars_path(runner)
        if path is None or not osp.isfile(path):
            print_log(
                'ClsPlotHook: no scalars.json yet (training curves need a '
                'LocalVisBackend in the visualizer); skipped.',
                logger='current')
            return []
        try:
            out = plot_training_curves(
                path, osp.join(self._root(runner), 'training_curves.png'),
                title=f'Training curves ({runner.experiment_name})')
        except ValueError as exc:  # nothing logged yet
            print_log(f'ClsPlotHook: {exc}', logger='current')
            return []
        return [out]

    @staticmethod
    def _training_ends(runner) -> bool:
        """Whether the validation just run follows the last training
        epoch or iteration (not a validation-only run)."""
        loop = getattr(runner, '_train_loop', None)
        if loop is None or isinstance(loop, dict):
            return False
        if getattr(loop, 'max_epochs', None) is not None and \
                hasattr(loop, 'epoch'):
            return loop.epoch >= loop.max_epochs
        return loop.iter >= loop.max_iters

    def _run(self, runner, what: str, func, *args) -> None:
        if not is_main_process():
            return
        try:
            written = func(runner, *args)
        except Exception as exc:  # pictures must never stop a training run
            print_log(
                f'ClsPlotHook: drawing {what} failed: '
                f'{type(exc).__name__}: {exc}', logger='current',
                level=logging.WARNING)
            return
        if written:
            print_log(
                f'ClsPlotHook: saved {what} to ' + ', '.join(written),
                logger='current')

    # -------------------------------------------------------------- hooks
    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Draw the validation pictures (every ``interval`` validations)."""
        self._val_count += 1
        if self._val_count % self.interval:
            return
        self._run(runner, 'validation plots', self._plot_eval,
                  runner.val_evaluator, 'val')
        # after the last epoch's validation, after_train draws them
        if self.curves_after_val and not self._training_ends(runner):
            self._run(runner, 'training curves', self._plot_curves)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Draw the test pictures."""
        self._run(runner, 'test plots', self._plot_eval,
                  runner.test_evaluator, 'test')

    def after_train(self, runner) -> None:
        """Draw the training curves of the whole run."""
        self._run(runner, 'training curves', self._plot_curves)
