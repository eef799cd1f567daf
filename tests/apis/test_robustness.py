"""run_robustness / tools/test_robustness.py on tiny random models."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dinov3_mm.apis.robustness import corrupted_pipeline, run_robustness
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.datasets.synthetic_seg import write_seg_shapes_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _save(cfg, folder):
    from dinov3_mm.apis import init_model
    torch.manual_seed(0)
    ckpt = str(folder / 'model.pth')
    torch.save(dict(state_dict=init_model(cfg).state_dict()), ckpt)
    cfg.dump(str(folder / 'config.py'))
    return str(folder / 'config.py'), ckpt


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp('robust_cls')
    data = write_shape_dataset(str(folder / 'shapes'), size=48,
                               per_split=dict(test=4))
    cfg = Config.fromfile(osp.join(REPO, 'configs/demo/convnext_shapes.py'))
    cfg.test_dataloader.dataset.data_root = data
    return _save(cfg, folder)


def test_pipeline_gets_the_step_after_loading_and_the_meta_keys():
    cfg = Config.fromfile(osp.join(REPO, 'configs/demo/convnext_shapes.py'))
    steps = corrupted_pipeline(cfg.test_pipeline, 'fog', 2, seed=3)
    assert [s['type'] for s in steps] == [
        'LoadImage', 'Corrupt', 'ResizeKeepRatioPad', 'PackClsInputs']
    assert steps[1] == dict(type='Corrupt', corruption='fog', severity=2,
                            seed=3)
    assert steps[-1]['meta_keys'][-2:] == ('corruption', 'severity')


def test_classifier_sweep_attacks_and_mce(classifier, tmp_path):
    config, ckpt = classifier
    work = tmp_path / 'r'
    report = run_robustness(config, ckpt, str(work),
                            corruptions=['gaussian_noise', 'contrast'],
                            severities=[1, 5], attacks=['fgsm', 'pgd'],
                            epsilons=[0.0, 0.5], pgd_steps=2, num_workers=1)
    assert report['metric'] == 'top-1 accuracy'
    assert set(report['table']) == {'gaussian_noise', 'contrast'}
    values = [v for row in report['table'].values() for v in row.values()]
    assert all(0 <= v <= 100 for v in values)
    # eps 0 leaves the inputs alone: the clean accuracy
    for attack in ('fgsm', 'pgd'):
        assert report['adversarial'][attack][0.0] == pytest.approx(
            report['clean'])
    saved = json.loads((work / 'robustness.json').read_text())
    assert saved['summary']['mean_corrupted'] == pytest.approx(
        sum(values) / 4)
    assert (work / 'robustness_heatmap.png').read_bytes()[:4] == b'\x89PNG'
    assert '| contrast |' in (work / 'robustness.md').read_text()
    if all(v < 100 for v in values):  # against itself: every CE is 100 %
        again = run_robustness(config, ckpt, str(tmp_path / 'b'),
                               corruptions=['contrast'], severities=[1, 5],
                               baseline=str(work / 'robustness.json'),
                               num_workers=0)
        assert again['summary']['mce'] == pytest.approx(100)


def test_segmentor_sweep_reports_miou(tmp_path, tiny_seg_config):
    data = write_seg_shapes_dataset(str(tmp_path / 'seg'), num_train=1,
                                    num_val=2, size=48)
    cfg = tiny_seg_config(data, tmp_path / 'w')
    cfg.test_dataloader = cfg.val_dataloader
    config, ckpt = _save(cfg, tmp_path)
    report = run_robustness(config, ckpt, str(tmp_path / 'r'),
                            corruptions=['fog'], severities=[3],
                            num_workers=0)
    assert report['metric'] == 'mIoU'
    assert 0 <= report['table']['fog'][3] <= 100
    assert 0 <= report['clean'] <= 100


def test_tool_rejects_an_unknown_corruption(classifier, run_python):
    config, ckpt = classifier
    proc = run_python(args=[osp.join(REPO, 'tools', 'test_robustness.py'),
                            config, ckpt, '--corruptions', 'haze'])
    assert proc.returncode == 2
    assert 'unknown corruption(s) haze; valid: gaussian_noise' in \
        proc.stderr
