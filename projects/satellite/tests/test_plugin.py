"""Packaging: the entry point names the module that registers everything."""
import importlib
import tomllib

from dinov3_mm.registry import DATASETS, HOOKS, MODELS, TRANSFORMS

REGISTERED = {
    TRANSFORMS: ('LoadMultispectralGeoTIFF', 'LoadGeoTIFFAnnotation',
                 'SelectBands', 'NormalizeBands', 'RandomFlipRot90',
                 'SpectralJitter', 'PackMultispectralSegInputs'),
    DATASETS: ('GeoTIFFSegDataset', ),
    MODELS: ('MultispectralDINOv3ViT', 'MultispectralDINOv3ConvNeXt'),
    HOOKS: ('ResolutionScheduleHook', ),
}


def test_pyproject_entry_point_and_dependencies(repo_root):
    project = tomllib.loads(
        (repo_root / 'projects/satellite/pyproject.toml').read_text())
    meta = project['project']
    assert meta['name'] == 'dinov3_mm_satellite'
    entry = meta['entry-points']['dinov3_mm.plugins']
    assert entry == {'satellite': 'dinov3_mm_satellite'}
    deps = ' '.join(meta['dependencies'])
    assert 'tifffile' in deps
    assert 'dinov3_mm' not in deps and 'torch' not in deps
    importlib.import_module(entry['satellite'])
    for registry, names in REGISTERED.items():
        for name in names:
            assert registry.get(name) is not None, name
            assert registry.get(name).__module__.startswith(
                'dinov3_mm_satellite')


def test_shipped_configs(repo_root):
    from mmengine.config import Config
    small = Config.fromfile(
        str(repo_root / 'configs/satellite/vits16_unet_multispectral.py'))
    backbone = small.model.backbone
    assert backbone.type == 'MultispectralDINOv3ViT'
    assert backbone.arch == 'small' and backbone.init_cfg.checkpoint is None
    assert backbone.in_channels == len(small.bands) == 6
    assert small.model.data_preprocessor.normalization is None
    norm = next(t for t in small.test_pipeline if t.type == 'NormalizeBands')
    assert norm.preset == 'sat493m'
    assert len(norm.extra_mean) == backbone.in_channels - 3
    assert small.custom_hooks[0].type == 'ResolutionScheduleHook'
    large = Config.fromfile(
        str(repo_root / 'configs/satellite/vitl16_unet_multispectral.py'))
    assert large.model.backbone.arch == 'large'
    assert large.model.neck.in_channels == 1024
    assert large.model.backbone.in_channels == 6
