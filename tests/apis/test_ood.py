"""run_ood on a tiny classifier and generated images."""
import csv
import json
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config

from dinov3_mm.apis import inference_model, init_model
from dinov3_mm.apis.ood import run_ood, write_ood_threshold
from dinov3_mm.datasets.synthetic import write_shape_dataset
from dinov3_mm.evaluation.functional import OOD_SCORES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    """A tiny ViT classifier (random weights) whose config reads a generated
    train (4 per class) and test (3 per class) split."""
    folder = tmp_path_factory.mktemp('ood')
    data = write_shape_dataset(str(folder / 'shapes'), size=32,
                               per_split=dict(train=4, test=3),
                               splits=('train', 'test'))
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
    # a copy of the test images in nested folders: listed recursively
    same = classifier['folder'] / 'same_images'
    shutil.copytree(osp.join(classifier['data'], 'test'), same / 'nested')
    work = classifier['folder'] / 'report'
    results = run_ood(classifier['config'], classifier['checkpoint'],
                      [str(same)], str(work), k=2)
    entry = results['ood'][str(same)]
    assert results['num_id'] == entry['num_images'] == 9
    assert results['num_train'] == 12
    assert list(entry['metrics']) == list(OOD_SCORES)
    for score, metrics in entry['metrics'].items():
        # identical images, identical scores: every pair is a tie
        assert metrics['auroc'] == pytest.approx(50), score
        assert metrics['fpr@95tpr'] == pytest.approx(100), score
        assert metrics['aupr_in'] == pytest.approx(50), score

    # msp is the top probability inference_model reports; the threshold
    # keeping 95 % of 9 ID images keeps all 9: the lowest one
    model = init_model(classifier['config'], classifier['checkpoint'])
    test_images = sorted(str(p) for p in same.rglob('*.png'))
    top = [r['pred_score'] for r in inference_model(model, test_images)]
    assert results['thresholds']['msp'] == pytest.approx(min(top), abs=1e-6)

    saved = json.loads((work / 'ood_results.json').read_text())
    assert saved['thresholds'] == pytest.approx(results['thresholds'])
    assert saved['ood'][str(same)]['num_skipped'] == 0
    markdown = (work / 'ood_results.md').read_text()
    assert '| knn | 50.00 | 100.00 | 50.00 |' in markdown
    for score in OOD_SCORES:
        png = work / f'ood_hist_{score}.png'
        assert png.read_bytes()[:4] == b'\x89PNG', score
        assert saved['files']['histograms'][score] == str(png)

    with open(work / 'ood_scores.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['set'] for r in rows] == ['in-distribution'] * 9 + [
        str(same)] * 9
    assert sorted(r['path'] for r in rows[9:]) == test_images
    assert min(float(r['msp']) for r in rows[:9]) == pytest.approx(
        results['thresholds']['msp'], rel=1e-6)

    path = work / 'thr.json'
    entry = write_ood_threshold(results, 'msp', str(path))
    assert json.loads(path.read_text()) == entry
    assert entry['threshold'] == results['thresholds']['msp']
    assert entry['fpr'] == {str(same): pytest.approx(100)}
    with pytest.raises(ValueError, match="not 'knn'"):
        write_ood_threshold(results, 'knn', str(path))


def test_knn_compares_with_the_training_split_read_without_augmentation(
        classifier):
    # the training images themselves are their own nearest neighbours
    # (distance 0, the highest k-NN score) when read like the reference:
    # every one of them ranks above every test image
    train_copy = classifier['folder'] / 'train_copy'
    shutil.copytree(osp.join(classifier['data'], 'train'), train_copy)
    results = run_ood(classifier['config'], classifier['checkpoint'],
                      [str(train_copy)],
                      str(classifier['folder'] / 'train_report'),
                      scores=['knn'], k=1)
    knn = results['ood'][str(train_copy)]['metrics']['knn']
    assert results['ood'][str(train_copy)]['num_images'] == 12
    assert knn['auroc'] == pytest.approx(0)
    assert knn['fpr@95tpr'] == pytest.approx(100)


def test_bad_input_names_the_folder_the_file_and_the_score(classifier,
                                                          tmp_path):
    run = dict(config=classifier['config'],
               checkpoint=classifier['checkpoint'],
               work_dir=str(tmp_path / 'r'))
    empty = tmp_path / 'no_images'
    empty.mkdir()
    (empty / 'notes.txt').write_text('not an image')
    with pytest.raises(ValueError, match='OOD folder .*no_images holds no'):
        run_ood(ood_folders=[str(empty)], **run)
    with pytest.raises(FileNotFoundError, match='missing_folder'):
        run_ood(ood_folders=[str(tmp_path / 'missing_folder')], **run)
    with pytest.raises(ValueError, match=r"\['odin'\].*'msp'"):
        run_ood(ood_folders=[str(empty)], scores=['odin'], **run)

    mixed = tmp_path / 'mixed'
    shutil.copytree(osp.join(classifier['data'], 'test', 'circle'), mixed)
    (mixed / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(ValueError, match='(?s)broken.png.*skip-unreadable'):
        run_ood(ood_folders=[str(mixed)], scores=['msp'], **run)
    # a truncated PNG passes the header check and fails when decoded
    whole = (mixed / 'circle_00000.png').read_bytes()
    (mixed / 'truncated.png').write_bytes(whole[:len(whole) // 2])
    results = run_ood(ood_folders=[str(mixed)], scores=['msp'],
                      skip_unreadable=True, **run)
    assert results['ood'][str(mixed)]['num_images'] == 3
    assert results['ood'][str(mixed)]['num_skipped'] == 2
    with open(results['skipped_list'], newline='') as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows[1:]] == [str(mixed / 'broken.png'),
                                        str(mixed / 'truncated.png')]
    assert 'truncated' in rows[2][1]
    (mixed / 'broken.png').unlink()
    with pytest.raises(ValueError, match='truncated.png'):
        run_ood(ood_folders=[str(mixed)], scores=['msp'], **run)

    with pytest.raises(ValueError, match='multi-label'):
        run_ood(ood_folders=[str(mixed)], skip_unreadable=True,
                cfg_options={'model.head.type': 'MultiLabelLinearClsHead'},
                **run)
