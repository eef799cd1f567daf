"""Names for the learning rates of an optimizer's parameter groups.

Groups with the same starting learning rate share one name, so a plain
optimizer (one group) or mmengine's per-parameter groups with a few
``lr_mult`` values give a few names, not hundreds. A group from
:class:`~dinov3_mm.engine.optimizers.LayerDecayOptimWrapperConstructor`
(it carries ``layer_id``) is named after its backbone layer, e.g.
``backbone.layer_3``; parameters outside the backbone are ``head`` (or
their top-level modules, e.g. ``decode_head+neck``).
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple


def initial_lr(group: Mapping) -> float:
    """The learning rate a group started with (before any scheduler)."""
    return float(group.get('initial_lr', group['lr']))


def _module_path(names: Sequence[str]) -> str:
    """The deepest module holding all ``names``; else their top-level
    modules joined by ``+`` (at most three, then ``+...``)."""
    modules = [name.split('.')[:-1] for name in names]
    common: List[str] = []
    for parts in zip(*modules):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    if common:
        return '.'.join(common)
    tops = sorted({name.split('.')[0] for name in names})
    return '+'.join(tops[:3]) + ('+...' if len(tops) > 3 else '')


def _layer_name(groups: Sequence[Mapping], names: Sequence[str]
                ) -> Optional[str]:
    """``<backbone>.layer_<id>`` for layer-wise decay groups, ``head`` for
    their non-backbone groups; None for groups without ``layer_id``."""
    if not groups or not all('layer_id' in g for g in groups):
        return None
    ids = sorted({g['layer_id'] for g in groups}, key=lambda i: (i is None,
                                                                 i or 0))
    if ids == [None]:
        tops = sorted({name.split('.')[0] for name in names})
        return '+'.join(tops) or 'head'
    parts = names[0].split('.') if names else []
    backbone = ('.'.join(parts[:parts.index('backbone') + 1])
                if 'backbone' in parts else 'backbone')
    numbers = [i for i in ids if i is not None]
    span = (str(numbers[0]) if len(numbers) == 1 else
            f'{numbers[0]}-{numbers[-1]}')
    return f'{backbone}.layer_{span}'


def _group_param_names(group: Mapping, names_by_id: Dict[int, str]
                       ) -> List[str]:
    if group.get('param_names'):
        return list(group['param_names'])
    return [names_by_id.get(id(p), '?') for p in group['params']]


def lr_group_labels(param_groups: Sequence[Mapping],
                    names_by_id: Optional[Dict[int, str]] = None
                    ) -> List[Tuple[str, int]]:
    """One ``(name, group index)`` per distinct starting learning rate.

    Args:
        param_groups: ``optimizer.param_groups``.
        names_by_id: ``id(parameter) -> name`` (from
            ``model.named_parameters()``), for groups without
            ``param_names``.

    Returns:
        list: ``(name, index of the first group with that lr)``, in group
        order; empty when every group has the same learning rate.
    """
    names_by_id = names_by_id or {}
    clusters: 'OrderedDict[float, List[int]]' = OrderedDict()
    for index, group in enumerate(param_groups):
        clusters.setdefault(initial_lr(group), []).append(index)
    if len(clusters) < 2:
        return []
    labelled = []
    for indices in clusters.values():
        groups = [param_groups[i] for i in indices]
        names = [n for g in groups for n in _group_param_names(g, names_by_id)]
        labelled.append([_layer_name(groups, names) or _module_path(names)
                         or 'params', names, indices[0]])
    counts: Dict[str, int] = {}
    for entry in labelled:
        counts[entry[0]] = counts.get(entry[0], 0) + 1
    for entry in labelled:  # one name, several lrs: add the module
        label, names, _ = entry
        if counts[label] > 1:
            module, owner = _module_path(names), label.split('.layer_')[0]
            extra = (module[len(owner):].lstrip('.')
                     if module.startswith(owner) else '')
            if extra:
                entry[0] = f'{label}.{extra}'
    seen: Dict[str, int] = {}
    result = []
    for label, _, index in labelled:
        seen[label] = seen.get(label, 0) + 1
        result.append((label if seen[label] == 1 else
                       f'{label}#{seen[label]}', index))
    return result


def base_group_index(param_groups: Sequence[Mapping],
                     base_lr: Optional[float]) -> int:
    """The group whose starting lr is the optimizer's ``lr`` (the "base"
    group logged as ``lr``); the first group when none is."""
    if base_lr is not None:
        for index, group in enumerate(param_groups):
            if initial_lr(group) == float(base_lr):
                return index
    return 0
