"""check_config: misspelt keys, unknown arguments, wrong types, data roots."""
import argparse
import textwrap
import uuid
from pathlib import Path

import pytest
from mmengine.config import Config
from torch import nn

from dinov3_mm.engine.cli_options import CfgOptionsAction
from dinov3_mm.engine.config_check import (ConfigError, accepted_arguments,
                                           check_config, known_top_level_keys)
from dinov3_mm.engine.runner_cfg import apply_common_options
from dinov3_mm.registry import MODELS

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    str(p.relative_to(REPO_ROOT))
    for p in (REPO_ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts)


def _config(tmp_path, text: str) -> Config:
    path = tmp_path / 'x.py'
    path.write_text("default_scope = 'dinov3_mm'\n" + textwrap.dedent(text))
    return Config.fromfile(str(path))


def _problem(tmp_path, text: str, mode=None) -> str:
    cfg = _config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        check_config(cfg, 'configs/x.py', mode=mode)
    return str(info.value)


def _passes(tmp_path, text: str, mode=None) -> None:
    check_config(_config(tmp_path, text), 'configs/x.py', mode=mode)


def _unique(prefix: str) -> str:
    return f'{prefix}{uuid.uuid4().hex[:8]}'


# a. top-level keys


def test_misspelt_top_level_key_names_the_closest_key(tmp_path):
    message = _problem(tmp_path, 'defualt_hooks = dict()\n')
    assert message == ("configs/x.py: unknown top-level key 'defualt_hooks'; "
                       "did you mean 'default_hooks'?")


def test_helper_variables_and_legitimate_keys_pass(tmp_path):
    _passes(
        tmp_path, """
        _base_ = []
        data_root = 'data'
        crop_size = 128
        num_classes = 4
        train_pipeline = [dict(type='LoadImage')]
        vis_backends = [dict(type='LocalVisBackend')]
        load_strict = False
        runner_type = 'StrictRunner'
        custom_imports = dict(imports=[], allow_failed_imports=False)
        experiment_name = 'run'
        """)


def test_known_keys_come_from_the_runner():
    known = known_top_level_keys()
    # Runner.__init__ arguments and keys mmengine's Runner reads itself
    for key in ('auto_scale_lr', 'experiment_name', 'data_preprocessor',
                'model_wrapper_cfg', 'find_unused_parameters', 'compile',
                'load_strict', 'runner_type', 'custom_imports', '_base_'):
        assert key in known


# b. unknown arguments


def test_unknown_backbone_argument_lists_valid_ones_closest_first(tmp_path):
    message = _problem(
        tmp_path, """
        model = dict(type='DINOv3Classifier',
                     backbone=dict(type='DINOv3ViT', arch='small',
                                   drop_path=0.1))
        """)
    prefix = ("configs/x.py: model.backbone (DINOv3ViT): unknown argument "
              "'drop_path'; valid arguments: drop_path_rate, ")
    assert message.startswith(prefix)
    assert 'out_indices' in message and 'init_cfg' in message
    assert message.endswith('(closest first)')


def test_nested_loss_and_top_level_model_arguments(tmp_path):
    message = _problem(
        tmp_path, """
        model = dict(type='DINOv3Classifier', bakbone=None,
                     head=dict(type='LinearClsHead', num_classes=3,
                               in_channels=384,
                               loss=dict(type='CrossEntropyLoss',
                                         los_weight=1.0)))
        """)
    assert "model (DINOv3Classifier): unknown argument 'bakbone'" in message
    assert ("model.head.loss (CrossEntropyLoss): unknown argument "
            "'los_weight'; valid arguments: loss_weight") in message


def _register(name: str, cls) -> str:
    MODELS.register_module(name=name, module=cls)
    return name


def test_kwargs_forwarded_to_the_parent_are_checked_against_it(tmp_path):

    class Parent(nn.Module):

        def __init__(self, width=4, init_cfg=None):
            super().__init__()

    class Child(Parent):

        def __init__(self, depth=2, **kwargs):
            super().__init__(
                **kwargs)

    class Keeper(nn.Module):

        def __init__(self, depth=2, **kwargs):
            super().__init__()
            self.options = kwargs  # not forwarded: unknowable

    assert set(accepted_arguments(Child)) == {'depth', 'width', 'init_cfg'}
    assert accepted_arguments(Keeper) is None
    child = _register(_unique('ConfigCheckChild'), Child)
    keeper = _register(_unique('ConfigCheckKeeper'), Keeper)
    message = _problem(
        tmp_path, f"""
        model = dict(type={child!r}, depth=3, width=8, widht=8)
        data_preprocessor = dict(type={keeper!r}, anything=1)
        """)
    assert message == (f"configs/x.py: model ({child}): unknown argument "
                       "'widht'; valid arguments: width, depth, init_cfg "
                       '(closest first)')


def test_dataset_pipeline_sampler_hooks_and_scheduler(tmp_path):
    message = _problem(
        tmp_path, """
        train_dataloader = dict(
            sampler=dict(type='DefaultSampler', shufle=True),
            dataset=dict(type='ImageFolderDataset', data_root='d',
                         pipeline=[dict(type='LoadImage'),
                                   dict(type='ResizeKeepRatioPad', size=32,
                                        sise=32)]))
        default_hooks = dict(logger=dict(type='LoggerHook', interval=1,
                                         priority='BELOW_NORMAL', intreval=2))
        custom_hooks = [dict(type='EmptyCacheHook', after_iters=True),
                        # takes **kwargs it keeps: unknowable, not checked
                        dict(type='EMAHook', momentum=0.1, anything=2)]
        param_scheduler = [dict(type='LinearLR', start_factor=0.1,
                                convert_to_iter_based=True, ends=3)]
        """)
    lines = message.splitlines()
    assert all(line.startswith('configs/x.py: ') for line in lines)
    for expected in (
            "train_dataloader.dataset.pipeline.1 (ResizeKeepRatioPad): "
            "unknown argument 'sise'",
            "train_dataloader.sampler (DefaultSampler): unknown argument "
            "'shufle'; valid arguments: shuffle",
            "default_hooks.logger (LoggerHook): unknown argument 'intreval'; "
            'valid arguments: interval',
            "custom_hooks.0 (EmptyCacheHook): unknown argument 'after_iters'; "
            'valid arguments: after_iter',
            "param_scheduler.0 (LinearLR): unknown argument 'ends'; valid "
            'arguments: end'):
        assert any(expected in line for line in lines), expected
    assert len(lines) == 5


def test_optim_wrapper_evaluator_loops_and_visualizer(tmp_path):
    message = _problem(
        tmp_path, """
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1),
                             clip_gard=dict(max_norm=1.0))
        val_evaluator = dict(type='ClsMetric', top_k=(1, ))
        train_cfg = dict(by_epoch=True, max_epoch=3)
        val_cfg = dict(fp16=False, fp61=True)
        visualizer = dict(type='Visualizer',
                          vis_backends=[dict(type='LocalVisBackend',
                                             svae_dir='x')])
        """)
    for expected in (
            "optim_wrapper (OptimWrapper): unknown argument 'clip_gard'",
            "val_evaluator (ClsMetric): unknown argument 'top_k'",
            "train_cfg (EpochBasedTrainLoop): unknown argument 'max_epoch'; "
            'valid arguments: max_epochs',
            "val_cfg (ValLoop): unknown argument 'fp61'",
            "visualizer.vis_backends.0 (LocalVisBackend): unknown argument "
            "'svae_dir'"):
        assert expected in message


def test_unknown_type_and_scoped_type(tmp_path):
    # an unregistered type is left for the build (it suggests close names)
    _passes(tmp_path, "model = dict(type='NoSuchModelAnywhere', foo=1)\n")
    message = _problem(
        tmp_path, """
        train_dataloader = dict(sampler=dict(type='mmengine.DefaultSampler',
                                             sed=0))
        """)
    assert ("train_dataloader.sampler (mmengine.DefaultSampler): unknown "
            "argument 'sed'; valid arguments: seed") in message


# c. values of the wrong type


def test_string_learning_rate_is_not_a_number(tmp_path):
    message = _problem(
        tmp_path,
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr='fast'))\n")
    assert message.startswith(
        "configs/x.py: optim_wrapper.optimizer.lr (SGD): 'fast' is not a "
        'number; set a number such as the default 0.001')


def test_string_boolean_and_numbers_accepted(tmp_path):
    message = _problem(
        tmp_path, """
        train_dataloader = dict(sampler=dict(type='DefaultSampler',
                                             shuffle='yes'))
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=1, momentum=0.9))
        """)
    assert message == ("configs/x.py: train_dataloader.sampler.shuffle "
                       "(DefaultSampler): 'yes' is not a boolean; set True "
                       'or False')


def test_apply_common_options_checks_the_merged_options(tmp_path):
    path = tmp_path / 'opts.py'
    path.write_text("optim_wrapper = dict(optimizer=dict(type='SGD', "
                    'lr=0.1))\n')
    cfg = Config.fromfile(str(path))
    with pytest.raises(ConfigError) as info:
        apply_common_options(cfg, str(path),
                             {'optim_wrapper.optimizer.lr': 'fast'})
    assert str(info.value).startswith(
        f"{path}: optim_wrapper.optimizer.lr (SGD): 'fast' is not a number")


# d. data roots

LOADERS = """
train_dataloader = dict(dataset=dict(type='ImageFolderDataset', {train}))
val_dataloader = dict(dataset=dict(type='ImageFolderDataset', {val}))
test_dataloader = dict(dataset=dict(type='ImageFolderDataset', {test}))
"""


def _loaders(train='data_root=None',
             val='data_root=None',
             test='data_root=None'):
    return LOADERS.format(train=train, val=val, test=test)


def test_data_root_not_set(tmp_path):
    message = _problem(tmp_path, _loaders(train='split="train"'),
                       mode='train')
    assert message == (
        'configs/x.py: train_dataloader.dataset (ImageFolderDataset): '
        'data_root is not set; set it in the config or with --cfg-options '
        'train_dataloader.dataset.data_root=PATH')
    message = _problem(tmp_path, _loaders(test='data_root=None'),
                       mode='test')
    assert message.startswith(
        'configs/x.py: test_dataloader.dataset (ImageFolderDataset): '
        'data_root is not set;')


def test_data_root_that_does_not_exist(tmp_path):
    missing = tmp_path / 'nowhere'
    message = _problem(tmp_path, _loaders(train=f'data_root={str(missing)!r}'),
                       mode='train')
    assert (f"train_dataloader.dataset (ImageFolderDataset): data_root "
            f"'{missing}' does not exist") in message
    assert message.endswith(
        '--cfg-options train_dataloader.dataset.data_root=PATH')
    missing.mkdir()
    _passes(tmp_path, _loaders(train=f'data_root={str(missing)!r}'),
            mode='train')


def test_only_the_dataloaders_of_the_mode_are_checked(tmp_path):
    present = repr(str(tmp_path))
    text = _loaders(test=f'data_root={present}')
    _passes(tmp_path, text, mode='test')  # train and val unused
    _passes(tmp_path, text)  # no mode: no data checks
    # val without val_cfg / val_evaluator is not built when training
    _passes(tmp_path, _loaders(train=f'data_root={present}'), mode='train')
    message = _problem(
        tmp_path,
        _loaders(train=f'data_root={present}') +
        "val_cfg = dict()\nval_evaluator = dict(type='ClsMetric')\n",
        mode='train')
    assert message.startswith('configs/x.py: val_dataloader.dataset '
                              '(ImageFolderDataset): data_root is not set')


def test_data_root_of_a_wrapped_dataset(tmp_path):
    message = _problem(
        tmp_path, """
        train_dataloader = dict(dataset=dict(
            type='RepeatDataset', times=2,
            dataset=dict(type='ImageFolderDataset', data_root=None)))
        """, mode='train')
    assert message == (
        'configs/x.py: train_dataloader.dataset.dataset '
        '(ImageFolderDataset): data_root is not set; set it in the config or '
        'with --cfg-options train_dataloader.dataset.dataset.data_root=PATH')


# the shipped configs


@pytest.mark.parametrize('config', SHIPPED)
def test_shipped_config_passes(config):
    cfg = Config.fromfile(str(REPO_ROOT / config))
    cfg.setdefault('default_scope', 'dinov3_mm')
    check_config(cfg, config)


# --cfg-options


def _parser():
    parser = argparse.ArgumentParser(prog='train.py')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser


@pytest.mark.parametrize('item, reason', [
    ('train_cfg.max_epochs', 'has no "="'),
    ('=5', 'has no key before "="'),
    ('train_cfg..max_epochs=5', 'is not a dotted name'),
    ('model.out_indices=[1,2', 'cannot read the value'),
])
def test_malformed_cfg_option_is_a_usage_error(item, reason, capsys):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(['--cfg-options', 'a=1', item])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('usage: train.py')
    assert f"argument --cfg-options: '{item}'" in err or item in err
    assert reason in err and 'KEY=VALUE' in err


def test_well_formed_cfg_options_parse_as_with_dict_action():
    args = _parser().parse_args([
        '--cfg-options', 'train_cfg.max_epochs=5', 'model.out_indices=[1,2]',
        'pipeline.1.size=(32,32)', 'name=fast'
    ])
    assert args.cfg_options == {
        'train_cfg.max_epochs': 5,
        'model.out_indices': [1, 2],
        'pipeline.1.size': (32, 32),
        'name': 'fast'
    }
