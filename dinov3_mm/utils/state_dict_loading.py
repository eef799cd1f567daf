"""Loading a whole-model checkpoint strictly, with a report when it does not fit.

A checkpoint of another arch or another task's model must not be loaded
halfway and then used as if it were trained: :func:`load_model_weights`
compares keys and shapes first and, when strict, refuses with a report of the
missing, unexpected and mismatched keys. Partial loading (``strict=False``)
loads what fits and logs the same report as a warning.
"""
import logging
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from torch import Tensor, nn

from .checkpoint_io import CheckpointError, preview

#: mmengine's default: DDP-wrapped models save keys under ``module.``.
DEFAULT_REVISE_KEYS = ((r'^module\.', ''), )

STRICT_HINT = ('To load only the matching weights on purpose (e.g. '
               "fine-tuning from another task's checkpoint), set "
               '`load_strict = False` in the config (or --cfg-options '
               'load_strict=False); what does not fit is then reported and '
               'skipped.')


class CheckpointMismatchError(CheckpointError):
    """A checkpoint's keys or shapes do not match the model."""


@dataclass
class StateDictDiff:
    """How a checkpoint's state dict differs from a model's.

    Attributes:
        missing (list[str]): Model keys the checkpoint lacks.
        unexpected (list[str]): Checkpoint keys the model lacks.
        mismatched (list[tuple]): ``(key, checkpoint shape, model shape)``.
        matched (int): Keys present in both with equal shapes.
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    matched: int = 0

    @property
    def exact(self) -> bool:
        """Whether every key and shape matches."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, n: int = 5) -> str:
        """Counts and the first ``n`` keys of each kind, one kind a line."""
        lines = [f'{self.matched} tensors match']
        if self.missing:
            lines.append(f'{len(self.missing)} missing (in the model, not '
                         f'in the checkpoint): {preview(self.missing, n)}')
        if self.unexpected:
            lines.append(f'{len(self.unexpected)} unexpected (in the '
                         'checkpoint, not in the model): '
                         f'{preview(self.unexpected, n)}')
        if self.mismatched:
            shown = '; '.join(f'{k}: checkpoint {tuple(a)} vs model {tuple(b)}'
                              for k, a, b in self.mismatched[:n])
            more = len(self.mismatched) - n
            lines.append(f'{len(self.mismatched)} with another shape: {shown}'
                         + (f'; ... (+{more} more)' if more > 0 else ''))
        return '\n  '.join(lines)


def checkpoint_state_dict(
        checkpoint: dict,
        revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS,
        name: str = 'checkpoint') -> Dict[str, Tensor]:
    """The model weights of a checkpoint (``state_dict`` or the dict itself),
    with ``revise_keys`` regex substitutions applied to the key names."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'{name} holds a {type(checkpoint).__name__}, '
                              'not a checkpoint dict.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise CheckpointError(f'{name}: its state_dict is a '
                              f'{type(state_dict).__name__}, not a dict.')
    for pattern, replacement in revise_keys:
        state_dict = {re.sub(pattern, replacement, k): v
                      for k, v in state_dict.items()}
    return state_dict


def compare_state_dict(model: nn.Module,
                       state_dict: Dict[str, Tensor]) -> StateDictDiff:
    """Compare a state dict's keys and shapes with ``model``'s."""
    own = model.state_dict()
    diff = StateDictDiff(
        missing=sorted(set(own) - set(state_dict)),
        unexpected=sorted(set(state_dict) - set(own)))
    for key in sorted(set(own) & set(state_dict)):
        theirs = getattr(state_dict[key], 'shape', None)
        if theirs is None or tuple(theirs) != tuple(own[key].shape):
            diff.mismatched.append((key, tuple(theirs or ()),
                                    tuple(own[key].shape)))
        else:
            diff.matched += 1
    return diff


def load_model_weights(model: nn.Module,
                       checkpoint: dict,
                       strict: bool = True,
                       checkpoint_name: str = 'checkpoint',
                       config_name: Optional[str] = None,
                       revise_keys: Sequence[Tuple[str, str]] = (
                           DEFAULT_REVISE_KEYS),
                       hint: str = STRICT_HINT) -> StateDictDiff:
    """Load a whole-model checkpoint into ``model``, strictly by default.

    Args:
        model (nn.Module): The model built from the config.
        checkpoint (dict): A loaded checkpoint (``{'state_dict': ...}`` or a
            bare state dict).
        strict (bool): Refuse any missing, unexpected or mismatched key.
            Defaults to True. When False, the matching tensors are loaded and
            the rest is logged as a warning.
        checkpoint_name (str): The file, for messages.
        config_name (str, optional): The config file, for messages.
        revise_keys (sequence): ``(pattern, replacement)`` regexes applied
            to checkpoint keys first.
        hint (str): What the error tells the user to do.

    Returns:
        StateDictDiff: What matched and what did not.

    Raises:
        CheckpointMismatchError: When strict and anything differs, or when
            nothing at all matches.
    """
    state_dict = checkpoint_state_dict(checkpoint, revise_keys,
                                       checkpoint_name)
    diff = compare_state_dict(model, state_dict)
    target = f'the model of {config_name}' if config_name else 'the model'
    target += f' ({type(model).__name__})'
    if diff.matched == 0 or (strict and not diff.exact):
        raise CheckpointMismatchError(
            f'{checkpoint_name} does not match {target}:\n  '
            f'{diff.summary()}\nIs it a checkpoint of another config or '
            f'arch? ' + (hint if diff.matched else
                         'None of its tensors fit, so not even a partial '
                         'load is possible.'))
    fitting = {k: v for k, v in state_dict.items()
               if k not in diff.unexpected and
               k not in {m[0] for m in diff.mismatched}}
    model.load_state_dict(fitting, strict=False)
    if not diff.exact:
        print_log(f'Partial load (strict=False) of {checkpoint_name} into '
                  f'{target}; not loaded:\n  {diff.summary()}',
                  logger='current', level=logging.WARNING)
    return diff
