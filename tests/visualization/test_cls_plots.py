"""Classification pictures and training curves are written as PNG files."""
import json

import cv2
import numpy as np
import pytest
import torch

from dinov3_mm.visualization import (load_scalars, plot_confusion_matrix,
                                     plot_pr_curves, plot_roc_curves,
                                     plot_training_curves)
from dinov3_mm.visualization.curves import split_records


def _assert_png(path):
    image = cv2.imread(str(path))
    assert image is not None, path
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas


def _data(n, c, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (n, ), generator=gen)
    logits = torch.randn(n, c, generator=gen)
    logits[torch.arange(n), labels] += 1.5
    return logits.softmax(-1), labels


@pytest.mark.parametrize('num_classes', [2, 5, 80])
def test_confusion_roc_pr(tmp_path, num_classes):
    scores, labels = _data(300, num_classes)
    classes = [f'class name {i}' for i in range(num_classes)]
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels.numpy(), scores.argmax(1).numpy()), 1)
    for normalize in (True, False):
        path = tmp_path / f'cm_{normalize}.png'
        assert plot_confusion_matrix(cm, classes, str(path),
                                     normalize=normalize) == str(path)
        _assert_png(path)
    _assert_png(plot_roc_curves(scores, labels, classes,
                                str(tmp_path / 'sub' / 'roc.png')))
    _assert_png(plot_pr_curves(scores.numpy(), labels.numpy(), None,
                               str(tmp_path / 'pr.png')))


def test_curves_multilabel_and_undefined_class(tmp_path):
    scores = torch.rand(40, 4)
    target = torch.rand(40, 4) < 0.4
    target[:, 3] = False  # no positives: skipped, not an error
    _assert_png(plot_roc_curves(scores, target, list('abcd'),
                                str(tmp_path / 'roc.png')))
    _assert_png(plot_pr_curves(scores, target, list('abcd'),
                               str(tmp_path / 'pr.png')))


def test_confusion_matrix_rejects_non_square(tmp_path):
    with pytest.raises(ValueError, match='square'):
        plot_confusion_matrix(np.zeros((2, 3)), None, str(tmp_path / 'x.png'))


def _synthetic_scalars(path, epochs=3, iters=20):
    with open(path, 'w') as fh:
        it = 0
        for epoch in range(1, epochs + 1):
            for _ in range(iters // 5):
                it += 5
                fh.write(json.dumps(dict(
                    lr=0.01 * (1 - it / (epochs * iters)), data_time=0.01,
                    loss=2.0 / it**0.5, loss_cls=1.5 / it**0.5, time=0.1,
                    epoch=epoch, iter=it, memory=10, step=it)) + '\n')
            fh.write(json.dumps({
                'accuracy/top1': 50.0 + 10 * epoch, 'f1/macro': 40.0 + epoch,
                'data_time': 0.01, 'time': 0.05, 'step': epoch}) + '\n')
        fh.write('{"truncated": ')  # a run still writing


def test_training_curves_from_scalars_json(tmp_path):
    src = tmp_path / 'scalars.json'
    _synthetic_scalars(src)
    records = load_scalars(str(src))
    assert len(records) == 3 * 5
    losses, lrs, metrics, eval_x = split_records(records)
    assert set(losses) == {'loss', 'loss_cls'}
    assert set(lrs) == {'lr'}
    assert set(metrics) == {'accuracy/top1', 'f1/macro'}
    assert eval_x == 'epoch'
    assert metrics['accuracy/top1'] == [(1.0, 60.0), (2.0, 70.0), (3.0, 80.0)]
    out = tmp_path / 'out' / 'training_curves.png'
    assert plot_training_curves(str(src), str(out)) == str(out)
    _assert_png(out)
    # records instead of a path; only training records
    _assert_png(plot_training_curves(
        [r for r in records if 'loss' in r], str(tmp_path / 'train.png')))


def test_training_curves_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        plot_training_curves(str(tmp_path / 'missing.json'),
                             str(tmp_path / 'x.png'))
    with pytest.raises(ValueError, match='nothing to plot'):
        plot_training_curves([{'step': 1, 'time': .1}],
                             str(tmp_path / 'x.png'))
