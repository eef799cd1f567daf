"""mmengine's RuntimeInfoHook, with the learning rate of every param group."""
from typing import List, Optional, Tuple

from mmengine.hooks import RuntimeInfoHook
from mmengine.model import is_model_wrapper

from dinov3_mm.registry import HOOKS

from .lr_groups import base_group_index, lr_group_labels


@HOOKS.register_module()
class GroupLrRuntimeInfoHook(RuntimeInfoHook):
    """Log the learning rate of each parameter group under its name.

    mmengine logs ``lr``, the rate of the first parameter group only; with
    layer-wise decay that is the lowest backbone layer's. This hook logs

    * ``lr``: the base group's rate, the group that started at the
      optimizer's ``lr`` (e.g. the head under layer-wise decay), so curves of
      ``lr`` keep meaning the configured rate;
    * ``lr/<name>`` for every distinct starting rate when there are several,
      e.g. ``lr/backbone.layer_0``, ..., ``lr/head`` (names from
      :func:`~dinov3_mm.engine.hooks.lr_groups.lr_group_labels`).

    With several optimizers (``OptimWrapperDict``) it logs what mmengine
    logs. Use as ``default_hooks.runtime_info``; the log line shows the rates
    in scientific notation with ``GroupLrLogProcessor``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.labels: List[Tuple[str, int]] = []
        self._base: Optional[int] = None

    def before_train(self, runner) -> None:
        super().before_train(runner)
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        if optimizer is None:  # several optimizers
            self.labels, self._base = [], None
            return
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        names = {id(p): name for name, p in model.named_parameters()}
        groups = optimizer.param_groups
        self.labels = lr_group_labels(groups, names)
        self._base = base_group_index(groups, optimizer.defaults.get('lr'))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        super().before_train_iter(runner, batch_idx, data_batch)
        if self._base is None:
            return
        groups = runner.optim_wrapper.optimizer.param_groups
        hub = runner.message_hub
        if self._base != 0:
            hub.update_scalar('train/lr', groups[self._base]['lr'])
        for name, index in self.labels:
            hub.update_scalar(f'train/lr/{name}', groups[index]['lr'])
