"""Robustness of a trained model to corruptions and to adversarial noise.

Corruptions: :class:`~dinov3_mm.datasets.transforms.Corrupt` (ImageNet-C by
``imagecorruptions-imaug``).

``tools/test_robustness.py`` runs this. The config's test set is read once
clean and once per (corruption, severity): each of those is the test
dataset with a :class:`~dinov3_mm.datasets.transforms.Corrupt` step right
after image loading, and all of them form one dataset read by one dataloader,
so the corruptions are computed in its worker processes. The corruption and
severity of every image travel in its data sample's metainfo, and the
results are grouped by them: top-1 accuracy for classifiers, mIoU for
segmentors.

Adversarial robustness (classifiers): accuracy on the clean test set under
FGSM and PGD (L-inf) attacks of radius ``eps`` in the normalised input space
(the data preprocessor's output: ``(pixel / 255 - mean) / std``, so
``eps = 0.03`` is about 0.03 x 0.23 x 255 = 1.7 grey levels with ImageNet
statistics). Inputs are not clipped to the valid pixel range.
"""
import copy
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from dinov3_mm.datasets.transforms.cache import flatten_cached
from dinov3_mm.datasets.transforms.corrupt import (CORRUPTIONS,
                                                   check_corruption, corrupt)
from dinov3_mm.evaluation.functional.robustness import summarise_sweep
from dinov3_mm.evaluation.functional.segmentation import intersect_and_union
from dinov3_mm.registry import DATASETS, TRANSFORMS
from dinov3_mm.utils.atomic_write import atomic_write_text
from dinov3_mm.utils.progress import track

from .inference import init_model

CLEAN = 'clean'
META_KEYS = ('corruption', 'severity')


def corrupted_pipeline(pipeline: Sequence[dict], corruption: Optional[str],
                       severity: int = 0, seed: int = 0) -> List[dict]:
    """The test pipeline with a ``Corrupt`` step after loading and the
    corruption keys added to the packing step's ``meta_keys``.

    ``corruption=None`` keeps the images clean (the keys are still packed).
    """
    steps = [copy.deepcopy(dict(s)) for s in flatten_cached(pipeline)]
    loads = [i for i, s in enumerate(steps)
             if str(s.get('type', '')).split('.')[-1].startswith('Load')]
    if not loads or not str(steps[-1].get('type', '')).startswith('Pack'):
        raise ValueError('The test pipeline must load images (a Load* step) '
                         'and end with a Pack* step to be corrupted.')
    pack = steps[-1]
    keys = pack.get('meta_keys') or TRANSFORMS.build(dict(pack)).meta_keys
    pack['meta_keys'] = tuple(keys) + tuple(
        k for k in META_KEYS if k not in keys)
    if corruption is not None:
        steps.insert(loads[-1] + 1, dict(
            type='Corrupt', corruption=corruption, severity=severity,
            seed=seed))
    return steps


def _group(sample) -> tuple:
    meta = sample.metainfo
    return (meta.get('corruption') or CLEAN, int(meta.get('severity') or 0))


class _Scores:
    """Accumulates accuracy (classification) or IoU counts per group."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.counts = defaultdict(lambda: torch.zeros(2, dtype=torch.long))
        self.iou = {}

    def add(self, samples) -> None:
        for sample in samples:
            group = _group(sample)
            if 'pred_sem_seg' in sample:
                pred = sample.pred_sem_seg.data.reshape(-1).cpu()
                label = sample.gt_sem_seg.data.reshape(-1).cpu()
                inter, union, _, _ = intersect_and_union(
                    pred, label, self.num_classes, self.ignore_index)
                old = self.iou.get(group)
                self.iou[group] = (inter, union) if old is None else (
                    old[0] + inter, old[1] + union)
            else:
                hit = int(sample.pred_label.reshape(-1)[0] ==
                          sample.gt_label.reshape(-1)[0])
                self.counts[group] += torch.tensor([hit, 1])

    def value(self, group: tuple) -> float:
        if group in self.iou:
            inter, union = self.iou[group]
            present = union > 0
            return 100 * (inter[present].double() /
                          union[present].double()).mean().item()
        hits, total = self.counts[group].tolist()
        return 100 * hits / max(total, 1)


def run_corruption_sweep(model: nn.Module, corruptions: Sequence[str],
                         severities: Sequence[int], batch_size: int,
                         num_workers: int, seed: int = 0) -> dict:
    """Clean and corrupted performance of ``model`` on its config's test set.

    Returns:
        dict: ``clean`` and ``table[corruption][severity]`` in percent, and
        the ``metric`` name.
    """
    for name in corruptions:
        for severity in severities:
            check_corruption(name, severity)
    cfg = model.cfg
    base = copy.deepcopy(cfg.test_dataloader.dataset)
    runs = [(None, 0)] + [(c, s) for c in corruptions for s in severities]
    datasets = []
    for corruption, severity in runs:
        base['pipeline'] = corrupted_pipeline(
            cfg.test_dataloader.dataset.pipeline, corruption, severity, seed)
        datasets.append(DATASETS.build(copy.deepcopy(base)))
    if 'glass_blur' in corruptions:
        # numba compiles glass blur here, once; the forked workers inherit it
        corrupt(np.zeros((32, 32, 3), np.uint8), 'glass_blur', 1, 0)
    loader = DataLoader(ConcatDataset(datasets), batch_size=batch_size,
                        shuffle=False, num_workers=num_workers,
                        collate_fn=pseudo_collate)
    classes = (model.dataset_meta or {}).get('classes') or []
    scores = _Scores(max(len(classes), 1),
                     cfg.get('test_evaluator', {}).get('ignore_index', 255)
                     if isinstance(cfg.get('test_evaluator'), dict) else 255)
    with torch.no_grad():
        for batch in track(loader, f'corruptions: {len(runs) - 1} x '
                           f'{len(datasets[0])} images', unit='batch'):
            scores.add(model.test_step(batch))
    segmentation = bool(scores.iou)
    return dict(
        metric='mIoU' if segmentation else 'top-1 accuracy',
        clean=scores.value((CLEAN, 0)),
        table={c: {s: scores.value((c, s)) for s in severities}
               for c in corruptions})


def adversarial_accuracy(model: nn.Module, attacks: Sequence[str],
                         epsilons: Sequence[float], batch_size: int,
                         num_workers: int, pgd_steps: int = 10,
                         pgd_step_size: Optional[float] = None,
                         seed: int = 0) -> Dict[str, Dict[float, float]]:
    """Top-1 accuracy (%) of a classifier under FGSM / PGD per epsilon.

    PGD starts from a uniform random point in the eps-ball and takes
    ``pgd_steps`` signed-gradient steps of ``pgd_step_size`` (default
    ``2.5 * eps / pgd_steps``), projecting back into the ball each time.
    """
    unknown = [a for a in attacks if a not in ('fgsm', 'pgd')]
    if unknown:
        raise ValueError(f'Unknown attack(s) {unknown}; use fgsm and/or pgd.')
    cfg = model.cfg
    dataset = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=pseudo_collate)
    generator = torch.Generator().manual_seed(seed)
    hits = {a: defaultdict(int) for a in attacks}
    total = 0
    for batch in track(loader, 'adversarial attacks', unit='batch'):
        data = model.data_preprocessor(batch, False)
        inputs = data['inputs'].detach().float()
        labels = torch.cat([s.gt_label.reshape(-1)[:1]
                            for s in data['data_samples']]).to(inputs.device)
        total += len(labels)
        for attack in attacks:
            for eps in epsilons:
                adv = _attack(model, inputs, labels, attack, eps, pgd_steps,
                              pgd_step_size, generator)
                with torch.no_grad():
                    pred = model(adv, mode='tensor').argmax(-1)
                hits[attack][eps] += int((pred == labels).sum())
    return {a: {eps: 100 * hits[a][eps] / max(total, 1) for eps in epsilons}
            for a in attacks}


def _loss_grad(model: nn.Module, x: torch.Tensor,
               labels: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x, mode='tensor').float(), labels)
        grad, = torch.autograd.grad(loss, x)
    return grad


def _attack(model, inputs, labels, attack, eps, steps, step_size,
            generator) -> torch.Tensor:
    if eps == 0:
        return inputs
    if attack == 'fgsm':
        return inputs + eps * _loss_grad(model, inputs, labels).sign()
    step_size = step_size or 2.5 * eps / steps
    noise = torch.rand(inputs.shape, generator=generator) * 2 - 1
    adv = inputs + eps * noise.to(inputs.device)
    for _ in range(steps):
        adv = adv + step_size * _loss_grad(model, adv, labels).sign()
        adv = inputs + (adv - inputs).clamp(-eps, eps)
    return adv


def run_robustness(config: str,
                   checkpoint: str,
                   work_dir: str,
                   corruptions: Sequence[str] = tuple(CORRUPTIONS),
                   severities: Sequence[int] = (1, 2, 3, 4, 5),
                   baseline: Optional[str] = None,
                   attacks: Sequence[str] = (),
                   epsilons: Sequence[float] = (0.01, 0.03),
                   pgd_steps: int = 10,
                   batch_size: Optional[int] = None,
                   num_workers: int = 2,
                   seed: int = 0,
                   cfg_options: Optional[dict] = None) -> dict:
    """The corruption sweep (and attacks) of a checkpoint, with a report.

    Writes ``robustness.json``, ``robustness.md`` and
    ``robustness_heatmap.png`` (corruption x severity) into ``work_dir``.

    Args:
        config (str): The model's config; its test set is used.
        checkpoint (str): The trained checkpoint.
        work_dir (str): Report folder.
        corruptions (sequence[str]): Names from :data:`CORRUPTIONS`.
        severities (sequence[int]): Severities 1-5.
        baseline (str, optional): ``robustness.json`` of a baseline model
            for the corruption errors and mCE.
        attacks (sequence[str]): ``'fgsm'`` and/or ``'pgd'`` (classifiers).
        epsilons (sequence[float]): Attack radii (normalised input space).
        pgd_steps (int): PGD iterations.
        batch_size (int, optional): Defaults to the test dataloader's.
        num_workers (int): Dataloader workers (the corruptions run there).
        seed (int): Seed of the corruptions' and PGD's random streams.
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict: The report (what ``robustness.json`` holds).
    """
    model = init_model(config, checkpoint, cfg_options=cfg_options)
    batch_size = batch_size or model.cfg.test_dataloader.get('batch_size', 8)
    report = dict(config=config, checkpoint=checkpoint, seed=seed)
    report.update(run_corruption_sweep(model, corruptions, severities,
                                       batch_size, num_workers, seed))
    base_table = None
    if baseline:
        with open(baseline) as f:
            base_table = {c: {int(s): v for s, v in row.items()}
                          for c, row in json.load(f)['table'].items()}
    report['summary'] = summarise_sweep(report['clean'], report['table'],
                                        base_table)
    if attacks:
        report['adversarial'] = adversarial_accuracy(
            model, attacks, epsilons, batch_size, num_workers, pgd_steps,
            seed=seed)
    write_robustness_report(report, work_dir)
    return report


def robustness_markdown(report: dict) -> str:
    """The sweep as markdown tables."""
    summary, metric = report['summary'], report['metric']
    severities = sorted({s for row in report['table'].values() for s in row})
    lines = [f'# Robustness: {metric} (%)', '',
             f'clean {report["clean"]:.2f}; mean under corruption '
             f'{summary["mean_corrupted"]:.2f}; relative robustness '
             f'{summary["relative_robustness"]:.3f}' +
             (f'; mCE {summary["mce"]:.1f} %' if 'mce' in summary else ''),
             '', '| corruption | ' + ' | '.join(
                 f'severity {s}' for s in severities) + ' | mean |' +
             (' CE (%) |' if 'mce' in summary else ''),
             '|---|' + '---|' * (len(severities) + 1 + ('mce' in summary))]
    for name, row in report['table'].items():
        ce = summary.get('corruption_errors', {}).get(name)
        lines.append(f'| {name} | ' + ' | '.join(
            f'{row[s]:.2f}' for s in severities) +
            f' | {summary["per_corruption"][name]:.2f} |' +
            (f' {ce:.1f} |' if 'mce' in summary else ''))
    for attack, row in report.get('adversarial', {}).items():
        lines += ['', f'{attack.upper()}: ' + ', '.join(
            f'eps {eps}: {acc:.2f}' for eps, acc in row.items())]
    return '\n'.join(lines) + '\n'


def write_robustness_report(report: dict, work_dir: str) -> List[str]:
    """``robustness.json``, ``robustness.md``, ``robustness_heatmap.png``."""
    os.makedirs(work_dir, exist_ok=True)
    paths = [osp.join(work_dir, n) for n in (
        'robustness.json', 'robustness.md', 'robustness_heatmap.png')]
    atomic_write_text(paths[0], lambda f: json.dump(report, f, indent=2))
    atomic_write_text(paths[1], lambda f: f.write(robustness_markdown(report)))
    plot_heatmap(report, paths[2])
    return paths


def plot_heatmap(report: dict, path: str) -> str:
    """Corruption x severity heatmap of the performance."""
    import numpy as np
    from matplotlib.figure import Figure
    names = list(report['table'])
    severities = sorted({s for row in report['table'].values() for s in row})
    values = np.array([[report['table'][n][s] for s in severities]
                       for n in names])
    fig = Figure(figsize=(1.2 * len(severities) + 3, 0.4 * len(names) + 1.5))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap='viridis', vmin=0, vmax=100,
                      aspect='auto')
    ax.set_xticks(range(len(severities)), [str(s) for s in severities])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel('severity')
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f'{v:.0f}', ha='center', va='center', fontsize=7,
                color='white' if v < 60 else 'black')
    fig.colorbar(image, ax=ax, label=f'{report["metric"]} (%)')
    ax.set_title(f'clean {report["clean"]:.1f} %')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
