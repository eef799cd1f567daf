"""run_ood / tools/test_ood.py on a tiny classifier and generated images."""
import json
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config

from dinov3_mm.apis.ood import run_ood, write_ood_threshold
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.evaluation.functional.ood import OOD_SCORES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    """A random tiny ViT classifier whose config reads train and test."""
    from dinov3_mm.apis import init_model
    folder = tmp_path_factory.mktemp('ood')
    data = write_shape_dataset(str(folder / 'shapes'), size=32,
                               per_split=dict(train=4, test=3))
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/classification/vits16_linear_probe_shapes.py'))
    cfg.model.backbone.update(
        arch=dict(embed_dims=48, num_layers=2, num_heads=3), frozen_stages=2)
    cfg.model.head.in_channels = 96
    for split in ('train', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = data
        loader.num_workers = 0
        loader.persistent_workers = False
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeKeepRatioPad':
            step['size'] = 32
    torch.manual_seed(0)
    ckpt = str(folder / 'model.pth')
    torch.save(dict(state_dict=init_model(cfg).state_dict()), ckpt)
    cfg.dump(str(folder / 'config.py'))
    return dict(config=str(folder / 'config.py'), checkpoint=ckpt,
                data=data, folder=folder)


def test_the_test_set_against_itself_is_chance_for_every_score(classifier):
    same = classifier['folder'] / 'same_images'
    shutil.copytree(osp.join(classifier['data'], 'test'), same)
    work = classifier['folder'] / 'report'
    results = run_ood(classifier['config'], classifier['checkpoint'],
                      [str(same)], str(work), k=2)
    entry = results['ood'][str(same)]
    assert results['num_id'] == entry['num_images'] == 9
    assert list(entry['metrics']) == list(OOD_SCORES)
    for score, metrics in entry['metrics'].items():
        # identical images, identical scores: every pair is a tie
        assert metrics['auroc'] == pytest.approx(50), score
        assert metrics['fpr@95tpr'] == pytest.approx(100), score
    saved = json.loads((work / 'ood_results.json').read_text())
    assert saved['thresholds'].keys() == set(OOD_SCORES)
    assert '| knn |' in (work / 'ood_results.md').read_text()
    assert (work / 'ood_histograms.png').read_bytes()[:4] == b'\x89PNG'

    entry = write_ood_threshold(results, 'msp', str(work / 'thr.json'))
    assert entry['threshold'] == saved['thresholds']['msp']
    with pytest.raises(ValueError, match="not 'knn'"):
        write_ood_threshold(results, 'knn', str(work / 'thr.json'))


def test_bad_input_names_the_folder_and_the_score(classifier, tmp_path):
    empty = tmp_path / 'no_images'
    empty.mkdir()
    (empty / 'notes.txt').write_text('not an image')
    with pytest.raises(ValueError, match='no_images'):
        run_ood(classifier['config'], classifier['checkpoint'], [str(empty)],
                str(tmp_path / 'r'))
    with pytest.raises(ValueError, match=r"\['odin'\].*'msp'"):
        run_ood(classifier['config'], classifier['checkpoint'], [str(empty)],
                str(tmp_path / 'r'), scores=['odin'])


def test_tool_writes_the_report_and_threshold(classifier, run_python,
                                              tmp_path):
    ood = write_shape_dataset(str(tmp_path / 'other'), size=48,
                              per_split=dict(test=2))
    work = tmp_path / 'tool'
    proc = run_python(args=[
        osp.join(REPO, 'tools', 'test_ood.py'), classifier['config'],
        classifier['checkpoint'], '--ood', ood, '--scores', 'msp', 'energy',
        '--work-dir', str(work), '--write-threshold', 'msp'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'msp' in proc.stdout and 'auroc' in proc.stdout
    threshold = json.loads((work / 'ood_threshold.json').read_text())
    assert threshold['score'] == 'msp' and threshold['tpr'] == 0.95
