"""mmengine's LogProcessor, showing per-group learning rates like ``lr``."""
from mmengine.runner import LogProcessor

from dinov3_mm.registry import LOG_PROCESSORS

#: Prefix of the per-group learning rates (``GroupLrRuntimeInfoHook``).
GROUP_LR_PREFIX = 'lr/'


@LOG_PROCESSORS.register_module()
class GroupLrLogProcessor(LogProcessor):
    """A :class:`~mmengine.runner.LogProcessor` that writes the per-group
    learning rates ``lr/<name>`` next to ``lr`` in scientific notation.

    mmengine formats only keys ending in ``lr`` that way; any other scalar
    gets ``num_digits`` fixed decimals, which shows a rate of ``1e-5`` as
    ``0.0000``. The scalars written to ``scalars.json`` are the same.
    Takes the arguments of :class:`~mmengine.runner.LogProcessor`.
    """

    def get_log_after_iter(self, runner, batch_idx: int, mode: str):
        scalars = runner.message_hub.log_scalars
        prefix = f'{mode}/{GROUP_LR_PREFIX}'
        hidden = {key: scalars.pop(key) for key in list(scalars)
                  if key.startswith(prefix)}
        try:
            tag, log_str = super().get_log_after_iter(runner, batch_idx, mode)
        finally:
            scalars.update(hidden)
        if not hidden:
            return tag, log_str
        rates = {key[len(mode) + 1:]: buffer.current()
                 for key, buffer in hidden.items()}
        for name, value in rates.items():
            tag[f'{mode}/{name}' if self.log_with_hierarchy else name] = value
        text = ' '.join(f'{name}: {value:.{self.num_digits}e}'
                        for name, value in rates.items())
        base = tag.get(f'{mode}/lr' if self.log_with_hierarchy else 'lr')
        anchor = (f' lr: {base:.{self.num_digits}e}'
                  if isinstance(base, float) else None)
        at = log_str.find(anchor) if anchor else -1
        if at < 0:
            return tag, f'{log_str.rstrip()}  {text}'
        at += len(anchor)
        return tag, f'{log_str[:at]} {text}{log_str[at:]}'
