"""Registries of the ``dinov3_mm`` scope.

Every node is a child of the matching mmengine root registry, so a config with
``default_scope = 'dinov3_mm'`` finds our components first and mmengine's (or a
scoped foreign one such as ``'mmseg.UPerHead'``) otherwise. Modules are imported
lazily from ``locations`` the first time a registry is queried; at the same
moment installed plugins (entry-point group ``dinov3_mm.plugins``) are imported.
"""
import difflib

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'dinov3_mm'


class DINOv3Registry(Registry):
    """mmengine registry that also loads plugins and suggests close names."""

    def import_from_location(self) -> None:
        """Import this node's modules, then every installed plugin."""
        if not self._imported:
            super().import_from_location()
            from .plugins import load_plugins
            load_plugins()

    def build(self, cfg, *args, **kwargs):
        """Build ``cfg``; errors name the type.

        An unknown ``type`` lists the closest known names; a ``TypeError`` of
        the constructor (an unknown argument, a value of the wrong type) is
        raised again with the ``type`` in front.
        """
        try:
            return super().build(cfg, *args, **kwargs)
        except TypeError as exc:
            if getattr(exc, 'dinov3_mm_type', None) is not None:
                raise  # an inner build already named its type
            raise _named_type_error(exc, cfg) from exc
        except KeyError as exc:
            message = str(exc.args[0]) if exc.args else ''
            wanted = cfg.get('type') if hasattr(cfg, 'get') else None
            if not message.startswith(f'{wanted} is not in the'):
                raise  # a nested build failed; its message says which
            known = sorted(self._all_names())
            close = difflib.get_close_matches(str(wanted), known, n=5)
            hint = (f' Did you mean one of {close}?' if close else
                    ' Register the class, or import its module with '
                    '`custom_imports` or a dinov3_mm plugin package.')
            raise KeyError(message + hint) from exc

    def _all_names(self) -> set:
        """Names registered here and in every ancestor node."""
        names, node = set(), self
        while node is not None:
            names.update(node._module_dict)
            node = node.parent
        return names


def _named_type_error(exc: TypeError, cfg) -> TypeError:
    """``exc`` with the config's ``type`` in front."""
    wanted = cfg.get('type') if hasattr(cfg, 'get') else None
    name = wanted if isinstance(wanted, str) else getattr(
        wanted, '__name__', 'the component')
    error = TypeError(f'{name}: {exc} (check the arguments given to {name} '
                      'in the config)')
    error.dinov3_mm_type = name
    return error


def _node(name: str, parent: Registry, package: str) -> DINOv3Registry:
    return DINOv3Registry(
        name, parent=parent, scope=SCOPE, locations=[f'{SCOPE}.{package}'])


RUNNERS = _node('runner', MMENGINE_RUNNERS, 'engine')
RUNNER_CONSTRUCTORS = _node('runner constructor',
                            MMENGINE_RUNNER_CONSTRUCTORS, 'engine')
LOOPS = _node('loop', MMENGINE_LOOPS, 'engine')
HOOKS = _node('hook', MMENGINE_HOOKS, 'engine')

DATASETS = _node('dataset', MMENGINE_DATASETS, 'datasets')
DATA_SAMPLERS = _node('data sampler', MMENGINE_DATA_SAMPLERS, 'datasets')
TRANSFORMS = _node('transform', MMENGINE_TRANSFORMS, 'datasets')

MODELS = _node('model', MMENGINE_MODELS, 'models')
MODEL_WRAPPERS = _node('model_wrapper', MMENGINE_MODEL_WRAPPERS, 'models')
WEIGHT_INITIALIZERS = _node('weight initializer',
                            MMENGINE_WEIGHT_INITIALIZERS, 'models')

OPTIMIZERS = _node('optimizer', MMENGINE_OPTIMIZERS, 'engine')
OPTIM_WRAPPERS = _node('optim_wrapper', MMENGINE_OPTIM_WRAPPERS,
                       'engine')
OPTIM_WRAPPER_CONSTRUCTORS = _node('optimizer wrapper constructor',
                                   MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                   'engine')
PARAM_SCHEDULERS = _node('parameter scheduler', MMENGINE_PARAM_SCHEDULERS,
                         'engine')

METRICS = _node('metric', MMENGINE_METRICS, 'evaluation')
EVALUATOR = _node('evaluator', MMENGINE_EVALUATOR, 'evaluation')

TASK_UTILS = _node('task util', MMENGINE_TASK_UTILS, 'models')
VISUALIZERS = _node('visualizer', MMENGINE_VISUALIZERS, 'visualization')
VISBACKENDS = _node('vis_backend', MMENGINE_VISBACKENDS, 'visualization')
LOG_PROCESSORS = _node('log_processor', MMENGINE_LOG_PROCESSORS, 'engine')
INFERENCERS = _node('inferencer', MMENGINE_INFERENCERS, 'apis')
FUNCTIONS = _node('function', MMENGINE_FUNCTIONS, 'datasets')

__all__ = ['SCOPE', 'DINOv3Registry', 'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS', 'INFERENCERS', 'FUNCTIONS']
