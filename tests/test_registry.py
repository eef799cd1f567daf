"""dinov3_mm registries: scope, parents, error messages, custom_imports."""
import textwrap
import uuid

import mmengine.registry as mm_registry
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, Registry
from torch import nn

import dinov3_mm.registry as registry
from dinov3_mm.registry import MODELS, DINOv3Registry

# Every dinov3_mm registry and the mmengine root it must hang under.
EXPECTED = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
    'INFERENCERS', 'FUNCTIONS'
]


def _our_registries():
    return {
        name: value
        for name, value in vars(registry).items()
        if isinstance(value, Registry) and name.isupper()
        and not name.startswith('MMENGINE_')  # the imported roots
    }


def test_expected_registries_exist():
    missing = [name for name in EXPECTED if name not in _our_registries()]
    assert not missing, f'dinov3_mm.registry lacks {missing}'


@pytest.mark.parametrize('name', sorted(_our_registries()))
def test_registry_scope_and_parent(name):
    node = getattr(registry, name)
    assert isinstance(node, DINOv3Registry)
    assert node.scope == 'dinov3_mm'
    parent = getattr(mm_registry, name)
    assert node.parent is parent, (
        f'{name}.parent is {node.parent!r}, expected mmengine.registry.{name}')
    assert parent._children.get('dinov3_mm') is node


def _unique(prefix: str) -> str:
    return f'{prefix}{uuid.uuid4().hex[:8].capitalize()}'


def test_unknown_type_names_the_type():
    wanted = _unique('NoSuchThing')
    with pytest.raises(KeyError) as info:
        MODELS.build(dict(type=wanted))
    assert wanted in str(info.value)
    assert 'dinov3_mm' in str(info.value)


def test_near_miss_suggests_the_registered_name():
    # distinct last letters: a random suffix may end in a double letter
    name = _unique('RegistryProbeHead') + 'Xy'

    class Probe(nn.Module):
        pass

    MODELS.register_module(name=name, module=Probe)
    typo = name[:-2] + name[-1] + name[-2]  # swap the last two letters
    assert typo != name
    with pytest.raises(KeyError) as info:
        MODELS.build(dict(type=typo))
    message = str(info.value)
    assert typo in message
    assert 'Did you mean' in message and name in message


def test_nested_unknown_type_is_not_blamed_on_the_outer_type():
    outer_name, inner = _unique('OuterProbe'), _unique('MissingInner')

    class Outer(nn.Module):

        def __init__(self, head):
            super().__init__()
            self.head = MODELS.build(head)

    MODELS.register_module(name=outer_name, module=Outer)
    with pytest.raises(KeyError) as info:
        MODELS.build(dict(type=outer_name, head=dict(type=inner)))
    message = str(info.value)
    assert inner in message
    assert 'Did you mean' not in message
    assert 'custom_imports' in message  # the hint of the inner build


def test_build_resolves_through_default_scope_and_parents():
    name = _unique('ScopedProbe')

    class Probe(nn.Module):
        pass

    MODELS.register_module(name=name, module=Probe)
    # From mmengine's root registry, as the Runner builds, with our scope.
    with DefaultScope.overwrite_default_scope('dinov3_mm'):
        assert isinstance(mm_registry.MODELS.build(dict(type=name)), Probe)
    # An mmengine component is found through the parent.
    preprocessor = MODELS.build(dict(type='BaseDataPreprocessor'))
    assert type(preprocessor).__module__.startswith('mmengine.')
    # And through an explicit scope prefix.
    preprocessor = MODELS.build(dict(type='mmengine.BaseDataPreprocessor'))
    assert type(preprocessor).__module__.startswith('mmengine.')


def test_custom_imports_in_config(tmp_path, monkeypatch):
    module = f'custom_import_probe_{uuid.uuid4().hex[:8]}'
    type_name = _unique('CustomImportProbe')
    (tmp_path / f'{module}.py').write_text(
        textwrap.dedent(f"""
            from torch import nn
            from dinov3_mm.registry import MODELS


            @MODELS.register_module(name={type_name!r})
            class Probe(nn.Module):
                def __init__(self, width):
                    super().__init__()
                    self.fc = nn.Linear(width, 1)
            """))
    cfg_file = tmp_path / 'custom_imports_cfg.py'
    cfg_file.write_text(
        textwrap.dedent(f"""
            custom_imports = dict(imports=[{module!r}],
                                  allow_failed_imports=False)
            default_scope = 'dinov3_mm'
            model = dict(type={type_name!r}, width=3)
            """))
    monkeypatch.syspath_prepend(str(tmp_path))

    cfg = Config.fromfile(str(cfg_file))
    model = MODELS.build(cfg.model)
    assert model.fc.in_features == 3
    assert type(model).__module__ == module


def test_constructor_type_error_names_the_type():
    name = _unique('ArgProbe')

    class Probe(nn.Module):

        def __init__(self, width=1):
            super().__init__()

    MODELS.register_module(name=name, module=Probe)
    with pytest.raises(TypeError) as info:
        MODELS.build(dict(type=name, widht=2))
    message = str(info.value)
    assert message.startswith(f'{name}: ')
    assert "unexpected keyword argument 'widht'" in message
    assert f'check the arguments given to {name} in the config' in message


def test_nested_type_error_names_the_inner_type_once():
    outer_name, inner_name = _unique('OuterArgProbe'), _unique('InnerArgProbe')

    class Inner(nn.Module):

        def __init__(self, lr=0.1):
            super().__init__()
            if lr < 0:  # a str raises TypeError here, as torch optimizers do
                raise ValueError('negative')

    class Outer(nn.Module):

        def __init__(self, inner):
            super().__init__()
            self.inner = MODELS.build(inner)

    MODELS.register_module(name=inner_name, module=Inner)
    MODELS.register_module(name=outer_name, module=Outer)
    with pytest.raises(TypeError) as info:
        MODELS.build(dict(type=outer_name, inner=dict(type=inner_name,
                                                      lr='fast')))
    message = str(info.value)
    assert message.startswith(f'{inner_name}: ')
    assert outer_name not in message
