"""Inference pipelines drop annotation loaders, plugin ones included."""
import numpy as np
import pytest
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dinov3_mm.apis.inference import (build_test_pipeline,
                                      is_annotation_loader,
                                      transform_type_name)
from dinov3_mm.datasets.transforms import LoadSegAnnotation
from dinov3_mm.deploy.serving_spec import _pipeline_steps
from dinov3_mm.registry import TRANSFORMS


class PluginMaskLoader(BaseTransform):
    """A third-party label loader: only the class attribute marks it."""

    loads_annotations = True

    def transform(self, results):
        raise AssertionError('an annotation loader ran at inference')


class PluginColourJitter(BaseTransform):
    """A third-party transform that is not a loader: it must stay."""

    def transform(self, results):
        results['jittered'] = True
        return results


@pytest.fixture
def plugin_transforms():
    names = ('PluginMaskLoaderForTest', 'PluginColourJitterForTest')
    for name, cls in zip(names, (PluginMaskLoader, PluginColourJitter)):
        TRANSFORMS.register_module(name=name, module=cls)
    yield names
    for name in names:
        TRANSFORMS._module_dict.pop(name)


def _cfg(pipeline):
    init_default_scope('dinov3_mm')  # as init_model does
    return Config(dict(test_dataloader=dict(dataset=dict(pipeline=pipeline))))


def test_is_annotation_loader_reads_the_class_attribute(plugin_transforms):
    loader, jitter = plugin_transforms
    assert is_annotation_loader(dict(type='LoadSegAnnotation'))
    assert is_annotation_loader(LoadSegAnnotation())
    assert is_annotation_loader(dict(type=loader))
    assert is_annotation_loader(dict(type=PluginMaskLoader))
    assert not is_annotation_loader(dict(type=jitter))
    assert not is_annotation_loader(dict(type='LoadImage'))
    assert not is_annotation_loader(dict(type='NotRegisteredAnywhere'))
    assert transform_type_name(dict(type='mmseg.LoadAnnotations')) == (
        'LoadAnnotations')
    assert transform_type_name(PluginColourJitter()) == 'PluginColourJitter'


def test_build_test_pipeline_drops_core_and_plugin_loaders(plugin_transforms):
    loader, jitter = plugin_transforms
    cfg = _cfg([
        dict(type='LoadImage'),
        dict(type='ResizeKeepRatioPad', size=32),
        dict(type=loader),
        dict(type='LoadSegAnnotation'),
        dict(type=jitter),
        dict(type='PackSegInputs'),
    ])
    image = np.zeros((20, 40, 3), np.uint8)
    steps = build_test_pipeline(cfg, from_array=True).transforms
    assert [type(t).__name__ for t in steps] == [
        'ResizeKeepRatioPad', 'PluginColourJitter', 'PackSegInputs']
    packed = build_test_pipeline(cfg, from_array=True)(
        dict(img=image, img_shape=(20, 40), ori_shape=(20, 40)))
    assert tuple(packed['inputs'].shape) == (3, 32, 32)
    assert len(build_test_pipeline(cfg).transforms) == 4


def test_served_preprocessing_ignores_plugin_loaders(plugin_transforms):
    loader, jitter = plugin_transforms
    steps = _pipeline_steps([
        dict(type='LoadImage'),
        dict(type='ResizeKeepRatioPad', size=64),
        dict(type=loader),
        dict(type='PackSegInputs')
    ], 'plugin.py')
    assert steps['resize']['size'] == [64, 64]
    from dinov3_mm.deploy import ExportError
    with pytest.raises(ExportError, match='plugin.py uses '
                       'PluginColourJitterForTest'):
        _pipeline_steps([
            dict(type='LoadImage'),
            dict(type='ResizeKeepRatioPad', size=64),
            dict(type=jitter),
        ], 'plugin.py')
