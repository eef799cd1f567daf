"""Checks of a merged config before mmengine's Runner is built.

The Runner ignores top-level keys it does not know, and a wrong argument of a
component surfaces as a bare ``TypeError`` deep inside a build. These checks
read the config tree statically and raise one :class:`ConfigError` naming the
config file, the dotted key and what to do:

a. a top-level key that is a close misspelling of a key the Runner reads;
b. an argument the component's class does not accept;
c. a string where the class expects a number or a boolean;
d. (with ``mode``) a dataset ``data_root`` that is unset or does not exist,
   for the dataloaders the Runner builds in that mode only: ``'train'``
   builds the train loader and, when ``val_cfg`` and ``val_evaluator`` are
   set, the val loader; ``'val'`` the val loader; ``'test'`` the test
   loader. Loaders the mode never builds are not checked (``tools/test.py``
   works on a machine holding only the test data).

A class whose registry lookup fails is left to the build to report, and a
class taking ``**kwargs`` it does not visibly hand to its parent is not
checked (its accepted arguments are unknowable).
"""
import difflib
import functools
import inspect
import os.path as osp
import re
import textwrap
import typing
from dataclasses import dataclass
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Tuple)

from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, HOOKS,
                               LOG_PROCESSORS, LOOPS, METRICS, MODELS,
                               OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                               OPTIMIZERS, PARAM_SCHEDULERS, TRANSFORMS,
                               VISBACKENDS, VISUALIZERS, Registry)
from mmengine.runner import (EpochBasedTrainLoop, IterBasedTrainLoop,
                             LogProcessor, Runner, TestLoop, ValLoop)
from torch import nn

from dinov3_mm.registry import RUNNERS

# Keys configs legitimately set that the Runner reads from elsewhere
# (tools, Runner subclasses, mmengine's Config) or under another name.
EXTRA_TOP_LEVEL_KEYS = frozenset({
    '_base_', 'default_scope', 'custom_imports', 'work_dir', 'launcher',
    'resume', 'load_from', 'runner_type', 'randomness', 'env_cfg',
    'log_level', 'visualizer', 'log_processor', 'experiment_name',
    'model_wrapper_cfg', 'load_strict', 'verbose', 'compile'
})
MISSPELLING_RATIO = 0.8
MODES = ('train', 'val', 'test')

# A key of a model dict whose value is built from MODELS by its owner.
_MODEL_PART_NAMES = frozenset(
    {'backbone', 'neck', 'head', 'data_preprocessor'})
_MODEL_PART_PATTERN = re.compile(
    r'^(loss\w*|\w+_(head|neck|backbone|loss))$')
_INIT_CALL = re.compile(r'(?:super\s*\([^()]*\)|\b\w+)\s*\.\s*__init__\s*\(')


class ConfigError(ValueError):
    """A config that cannot work; the message says where and what to do.

    Args:
        config_path (str): The config file.
        problems (list[str]): One sentence per problem, each starting with
            the dotted key.
    """

    def __init__(self, config_path: str, problems: Sequence[str]) -> None:
        self.config_path = config_path
        self.problems = list(problems)
        super().__init__('\n'.join(f'{config_path}: {problem}'
                                   for problem in self.problems))


@dataclass
class _Node:
    """One dict of the config tree that a registry builds."""
    key: str
    cfg: Mapping
    registry: Registry
    default_type: Any = None  # used when the dict has no ``type``
    injected: frozenset = frozenset()  # arguments the builder passes itself
    extra: frozenset = frozenset()  # keys the builder pops before building


def check_config(cfg: Mapping,
                 config_path: str,
                 mode: Optional[str] = None) -> None:
    """Raise :class:`ConfigError` listing every problem found in ``cfg``.

    Args:
        cfg (Mapping): The merged config (``--cfg-options`` applied).
        config_path (str): Its file, named in the message.
        mode (str, optional): ``'train'``, ``'val'`` or ``'test'``: also
            check the ``data_root`` of the datasets that mode builds.
            Defaults to None (no dataset paths checked).

    Raises:
        ConfigError: A misspelt top-level key, an unknown argument, a
            string where a number or boolean is expected, or (with
            ``mode``) an unset or missing ``data_root``.
    """
    problems = unknown_top_level_keys(cfg)
    scope = cfg.get('default_scope') or 'mmengine'
    for node in iter_components(cfg):
        problems.extend(_check_node(node, scope))
    if mode is not None:
        problems.extend(_data_root_problems(cfg, scope, mode))
    if problems:
        raise ConfigError(config_path, problems)


# a. top-level keys -----------------------------------------------------------


def _runner_classes() -> List[type]:
    """mmengine's Runner and every Runner subclass in the RUNNERS registry."""
    classes, node = [Runner], RUNNERS
    node.import_from_location()
    while node is not None:
        classes.extend(obj for obj in node._module_dict.values()
                       if inspect.isclass(obj) and issubclass(obj, Runner))
        node = node.parent
    return classes


def runner_keys() -> frozenset:
    """Top-level keys the Runners read: ``Runner.__init__`` and ``cfg.get``."""
    params = inspect.signature(Runner.__init__).parameters
    keys = {name for name in params if name not in ('self', 'cfg')}
    for runner in _runner_classes():
        keys.update(_cfg_keys_read_by(runner))
    return frozenset(keys)


@functools.lru_cache(maxsize=None)
def _cfg_keys_read_by(cls: type) -> frozenset:
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(
        re.findall(r"(?<![\w])cfg(?:\.get\(|\[)\s*['\"](\w+)['\"]", source))


def known_top_level_keys() -> frozenset:
    """Runner keys plus the keys configs and tools legitimately use."""
    return runner_keys() | EXTRA_TOP_LEVEL_KEYS


def unknown_top_level_keys(cfg: Mapping) -> List[str]:
    """Problems for top-level keys that misspell a known key.

    Any other unknown key is a helper variable (``data_root``,
    ``train_pipeline``...) and accepted.
    """
    known = known_top_level_keys()
    problems = []
    for key in cfg.keys():
        if key in known:
            continue
        close = difflib.get_close_matches(
            key, sorted(known), n=1, cutoff=MISSPELLING_RATIO)
        if close:
            problems.append(f"unknown top-level key '{key}'; did you mean "
                            f"'{close[0]}'?")
    return problems


# the config tree -------------------------------------------------------------


def _dicts(value: Any, key: str) -> Iterator[Tuple[str, Mapping]]:
    """``(dotted key, dict)`` of a dict or of each dict of a list."""
    if isinstance(value, Mapping):
        yield key, value
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                yield f'{key}.{index}', item


def _is_model_part(name: str) -> bool:
    return name in _MODEL_PART_NAMES or bool(_MODEL_PART_PATTERN.match(name))


def _model_nodes(key: str, cfg: Mapping) -> Iterator[_Node]:
    yield _Node(key, cfg, MODELS)
    for name, value in cfg.items():
        if not _is_model_part(name):
            continue
        for sub_key, sub_cfg in _dicts(value, f'{key}.{name}'):
            if 'type' in sub_cfg:
                yield from _model_nodes(sub_key, sub_cfg)


def _dataset_nodes(key: str, cfg: Mapping) -> Iterator[_Node]:
    yield _Node(key, cfg, DATASETS)
    for sub_key, step in _dicts(cfg.get('pipeline'), f'{key}.pipeline'):
        yield _Node(sub_key, step, TRANSFORMS)
    for name in ('dataset', 'datasets'):  # wrappers: Concat, Repeat...
        for sub_key, sub_cfg in _dicts(cfg.get(name), f'{key}.{name}'):
            yield from _dataset_nodes(sub_key, sub_cfg)


def _dataloader_nodes(cfg: Mapping) -> Iterator[_Node]:
    for loader_key in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
        loader = cfg.get(loader_key)
        if not isinstance(loader, Mapping):
            continue
        if isinstance(loader.get('dataset'), Mapping):
            yield from _dataset_nodes(f'{loader_key}.dataset',
                                      loader['dataset'])
        if isinstance(loader.get('sampler'), Mapping):
            yield _Node(f'{loader_key}.sampler', loader['sampler'],
                        DATA_SAMPLERS, injected=frozenset({'dataset'}))
        if isinstance(loader.get('batch_sampler'), Mapping):
            yield _Node(f'{loader_key}.batch_sampler',
                        loader['batch_sampler'], DATA_SAMPLERS,
                        injected=frozenset({'sampler'}))


def _optim_nodes(cfg: Mapping) -> Iterator[_Node]:
    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, Mapping):
        return
    scope = cfg.get('default_scope') or 'mmengine'
    constructor = _resolve(OPTIM_WRAPPER_CONSTRUCTORS,
                           wrapper.get('constructor',
                                       'DefaultOptimWrapperConstructor'),
                           scope)
    if inspect.isclass(constructor) and issubclass(
            constructor, DefaultOptimWrapperConstructor):
        yield _Node('optim_wrapper', wrapper, OPTIM_WRAPPERS,
                    default_type='OptimWrapper',
                    extra=frozenset({'constructor', 'paramwise_cfg'}))
    if isinstance(wrapper.get('optimizer'), Mapping):
        yield _Node('optim_wrapper.optimizer', wrapper['optimizer'],
                    OPTIMIZERS, injected=frozenset({'params'}))


def _scheduler_nodes(value: Any, key: str) -> Iterator[_Node]:
    if isinstance(value, Mapping) and 'type' not in value:
        for name, sub_value in value.items():  # one list per optimizer
            yield from _scheduler_nodes(sub_value, f'{key}.{name}')
        return
    for sub_key, sub_cfg in _dicts(value, key):
        yield _Node(sub_key, sub_cfg, PARAM_SCHEDULERS,
                    injected=frozenset({'optimizer'}),
                    extra=frozenset({'convert_to_iter_based'}))


def _hook_nodes(cfg: Mapping) -> Iterator[_Node]:
    hooks = cfg.get('default_hooks')
    if isinstance(hooks, Mapping):
        for name, hook in hooks.items():
            if isinstance(hook, Mapping):
                yield _Node(f'default_hooks.{name}', hook, HOOKS,
                            extra=frozenset({'priority'}))
    for key, hook in _dicts(cfg.get('custom_hooks'), 'custom_hooks'):
        yield _Node(key, hook, HOOKS, extra=frozenset({'priority'}))


def _evaluator_nodes(cfg: Mapping) -> Iterator[_Node]:
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        if isinstance(evaluator, Mapping) and 'metrics' in evaluator:
            yield _Node(key, evaluator, EVALUATOR, default_type='Evaluator')
            evaluator, key = evaluator['metrics'], f'{key}.metrics'
        for sub_key, metric in _dicts(evaluator, key):
            yield _Node(sub_key, metric, METRICS)


def _loop_nodes(cfg: Mapping) -> Iterator[_Node]:
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, Mapping):
        by_epoch = train_cfg.get('by_epoch', True)
        yield _Node(
            'train_cfg', train_cfg, LOOPS,
            default_type=EpochBasedTrainLoop if by_epoch else
            IterBasedTrainLoop,
            injected=frozenset({'runner', 'dataloader'}),
            extra=frozenset() if 'type' in train_cfg else frozenset(
                {'by_epoch'}))
    for key, loop in (('val_cfg', ValLoop), ('test_cfg', TestLoop)):
        if isinstance(cfg.get(key), Mapping):
            yield _Node(key, cfg[key], LOOPS, default_type=loop,
                        injected=frozenset(
                            {'runner', 'dataloader', 'evaluator'}))


def _runtime_nodes(cfg: Mapping) -> Iterator[_Node]:
    visualizer = cfg.get('visualizer')
    if isinstance(visualizer, Mapping):
        yield _Node('visualizer', visualizer, VISUALIZERS)
        for key, backend in _dicts(
                visualizer.get('vis_backends'), 'visualizer.vis_backends'):
            yield _Node(key, backend, VISBACKENDS,
                        injected=frozenset({'save_dir'}))
    if isinstance(cfg.get('log_processor'), Mapping):
        yield _Node('log_processor', cfg['log_processor'], LOG_PROCESSORS,
                    default_type=LogProcessor)


def iter_components(cfg: Mapping) -> Iterator[_Node]:
    """Every dict of ``cfg`` that the Runner builds from a registry."""
    if isinstance(cfg.get('model'), Mapping):
        yield from _model_nodes('model', cfg['model'])
    if isinstance(cfg.get('data_preprocessor'), Mapping):
        yield _Node('data_preprocessor', cfg['data_preprocessor'], MODELS)
    yield from _dataloader_nodes(cfg)
    yield from _optim_nodes(cfg)
    yield from _scheduler_nodes(cfg.get('param_scheduler'),
                                'param_scheduler')
    yield from _hook_nodes(cfg)
    yield from _evaluator_nodes(cfg)
    yield from _loop_nodes(cfg)
    yield from _runtime_nodes(cfg)


# classes and their arguments -------------------------------------------------


def _resolve(registry: Registry, type_: Any, scope: str) -> Any:
    """The class registered as ``type_`` in ``scope``, or None."""
    if not isinstance(type_, str):
        return type_ if callable(type_) else None
    try:
        with registry.switch_scope_and_registry(scope) as node:
            return node.get(type_)
    except Exception:  # an import failing inside the lookup: the build says
        return None


def _node_class(node: _Node, scope: str) -> Any:
    type_ = node.cfg.get('type', node.default_type)
    if type_ is None:
        return None
    return _resolve(node.registry, type_, node.cfg.get('_scope_') or scope)


def _type_name(obj: Any) -> str:
    return getattr(obj, '__name__', None) or type(obj).__name__


def _label(cfg: Mapping, obj: Any) -> str:
    """The ``type`` as the config writes it, else the default class."""
    type_ = cfg.get('type')
    return type_ if isinstance(type_, str) else _type_name(obj)


def _call_arguments(source: str, start: int) -> str:
    """The text between the parenthesis at ``start - 1`` and its match."""
    depth = 1
    for index in range(start, len(source)):
        if source[index] == '(':
            depth += 1
        elif source[index] == ')':
            depth -= 1
            if depth == 0:
                return source[start:index]
    return source[start:]


def _forwards_kwargs(init: Any, name: str) -> bool:
    """Whether ``init`` hands ``**name`` to a parent's ``__init__``."""
    try:
        source = textwrap.dedent(inspect.getsource(init))
    except (OSError, TypeError):
        return False
    return any(f'**{name}' in _call_arguments(source, match.end())
               for match in _INIT_CALL.finditer(source))


def _own_parameters(init: Any) -> Optional[List[inspect.Parameter]]:
    try:
        return list(inspect.signature(init).parameters.values())
    except (TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def accepted_arguments(obj: Any) -> Optional[Dict[str, inspect.Parameter]]:
    """Keyword arguments ``obj(**kwargs)`` accepts, or None if unknowable.

    A class taking ``**kwargs`` that it passes to its parent's ``__init__``
    accepts the union of the signatures along its MRO.
    """
    if not inspect.isclass(obj):
        params = _own_parameters(obj)
        if params is None or any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return {p.name: p for p in params if p.kind is not p.VAR_POSITIONAL}
    accepted: Dict[str, inspect.Parameter] = {}
    for owner in obj.__mro__:
        init = owner.__dict__.get('__init__')
        if init is None:
            continue
        if owner in (object, nn.Module):  # both reject unknown keywords
            return accepted
        params = _own_parameters(init)
        if params is None:
            return None
        for param in params[1:]:  # after self
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                accepted.setdefault(param.name, param)
        var_keyword = [p for p in params if p.kind is p.VAR_KEYWORD]
        if not var_keyword:
            return accepted
        if not _forwards_kwargs(init, var_keyword[0].name):
            return None
    return accepted


def _by_closeness(wanted: str, names: Sequence[str]) -> List[str]:
    def ratio(name):
        return difflib.SequenceMatcher(None, wanted, name).ratio()

    return sorted(names, key=lambda name: (-ratio(name), name))


def _annotation_names(annotation: Any) -> set:
    if annotation is inspect.Parameter.empty:
        return set()
    if isinstance(annotation, str):
        return set(re.findall(r'\w+', annotation))
    args = typing.get_args(annotation)
    if args:
        names = set()
        for arg in args:
            names |= _annotation_names(arg)
        origin = typing.get_origin(annotation)
        if origin is not typing.Union:
            names.add(_type_name(origin))
        return names
    return {_type_name(annotation)}


def expected_kind(param: inspect.Parameter) -> Optional[str]:
    """``'boolean'`` or ``'number'`` when a string cannot be the value."""
    names = _annotation_names(param.annotation) - {'NoneType', 'None'}
    if names & {'str', 'Any', 'object'}:
        return None
    default = param.default
    if isinstance(default, bool) or (names and names <= {'bool'}):
        return 'boolean'
    if (isinstance(default, (int, float))
            or (names and names <= {'int', 'float', 'bool', 'Tensor'})):
        return 'number'
    return None


def _value_problem(key: str, name: str, value: Any,
                   param: inspect.Parameter) -> Optional[str]:
    kind = expected_kind(param)
    if kind is None or not isinstance(value, str):
        return None
    default = param.default
    if kind == 'boolean':
        return (f"{key} ({name}): '{value}' is not a boolean; set True or "
                'False')
    hint = (f' such as the default {default}'
            if isinstance(default, (int, float)) else '')
    return f"{key} ({name}): '{value}' is not a number; set a number{hint}"


def _check_node(node: _Node, scope: str) -> List[str]:
    obj = _node_class(node, scope)
    accepted = accepted_arguments(obj) if obj is not None else None
    if accepted is None:
        return []
    name = _label(node.cfg, obj)
    valid = sorted(set(accepted) - node.injected)
    problems = []
    for arg, value in node.cfg.items():
        if arg in ('type', '_scope_') or arg in node.extra:
            continue
        if arg not in accepted:
            names = ', '.join(_by_closeness(arg, valid)) or 'none'
            problems.append(f"{node.key} ({name}): unknown argument '{arg}'; "
                            f'valid arguments: {names} (closest first)')
            continue
        problem = _value_problem(f'{node.key}.{arg}', name, value,
                                 accepted[arg])
        if problem:
            problems.append(problem)
    return problems


# d. dataset roots ------------------------------------------------------------


def used_dataloaders(cfg: Mapping, mode: str) -> List[str]:
    """The ``*_dataloader`` keys the Runner builds when it runs ``mode``."""
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    keys = {'train': ['train_dataloader'], 'val': ['val_dataloader'],
            'test': ['test_dataloader']}[mode]
    if mode == 'train' and all(
            cfg.get(k) is not None
            for k in ('val_dataloader', 'val_cfg', 'val_evaluator')):
        keys.append('val_dataloader')
    return [key for key in keys if isinstance(cfg.get(key), Mapping)]


def _dataset_dicts(key: str, cfg: Mapping) -> Iterator[Tuple[str, Mapping]]:
    yield key, cfg
    for name in ('dataset', 'datasets'):
        for sub_key, sub_cfg in _dicts(cfg.get(name), f'{key}.{name}'):
            yield from _dataset_dicts(sub_key, sub_cfg)


def _data_root_problem(key: str, cfg: Mapping, scope: str) -> Optional[str]:
    obj = _resolve(DATASETS, cfg.get('type'), cfg.get('_scope_') or scope)
    accepted = accepted_arguments(obj) if obj is not None else None
    param = (accepted or {}).get('data_root')
    if param is None and 'data_root' not in cfg:
        return None
    todo = ('set it in the config or with --cfg-options '
            f'{key}.data_root=PATH')
    label = f'{key} ({_label(cfg, obj)})' if obj is not None else key
    value = cfg.get('data_root')
    if value is None:
        required = param is not None and param.default is param.empty
        if 'data_root' in cfg and param is not None and param.default is None:
            return None  # None is documented as a valid value
        if required or 'data_root' in cfg:
            return f'{label}: data_root is not set; {todo}'
        return None
    if (isinstance(value, str) and value and '://' not in value
            and not osp.exists(value)):
        return (f"{label}: data_root '{value}' does not exist (relative "
                f"paths start at '{osp.abspath('.')}'); {todo}")
    return None


def _data_root_problems(cfg: Mapping, scope: str, mode: str) -> List[str]:
    problems = []
    for loader_key in used_dataloaders(cfg, mode):
        dataset = cfg[loader_key].get('dataset')
        if not isinstance(dataset, Mapping):
            continue
        for key, dataset_cfg in _dataset_dicts(f'{loader_key}.dataset',
                                               dataset):
            problem = _data_root_problem(key, dataset_cfg, scope)
            if problem:
                problems.append(problem)
    return problems
