"""Out-of-distribution evaluation of a trained classifier (``tools/test_ood.py``).

The config's test set is the in-distribution (ID) set; each OOD folder is any
folder tree of images. Every image goes through the config's test pipeline
and the model once: its logits give the ``msp``, ``max_logit`` and ``energy``
scores, its pooled backbone feature the ``knn`` and ``mahalanobis`` scores,
which compare it with the features of the config's training set (also read
with the test pipeline). See :mod:`dinov3_mm.evaluation.functional.ood` for
the definitions; higher scores mean more in-distribution.

Writes into the work dir: ``ood_results.json`` (per OOD folder and score:
AUROC, FPR at 95 % TPR, AUPR-In, AUPR-Out, and the threshold that keeps 95 %
of ID images), ``ood_results.md`` (the same as tables) and
``ood_histograms.png`` (score histograms, ID against each OOD folder).
"""
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dataset import pseudo_collate
from torch import Tensor, nn
from torch.utils.data import DataLoader

from dinov3_mm.datasets.unlabeled import UnlabeledImageDataset
from dinov3_mm.evaluation.functional.ood import (FEATURE_SCORES, OOD_SCORES,
                                                 fit_mahalanobis, knn_score,
                                                 logit_score,
                                                 mahalanobis_score,
                                                 ood_metrics,
                                                 threshold_at_tpr)
from dinov3_mm.registry import DATASETS
from dinov3_mm.utils.atomic_write import atomic_write_text
from dinov3_mm.utils.progress import track

from .inference import init_model

#: Scores a deployed classifier can compute from the probabilities it
#: serves (``tools/deploy.py --ood-threshold``).
DEPLOYABLE_SCORES = ('msp', )


def _pooled(feats) -> Tensor:
    """A ``(B, C)`` feature from the backbone (or neck) output."""
    feat = feats[-1] if isinstance(feats, (tuple, list)) else feats
    if isinstance(feat, (tuple, list)):  # e.g. (patch map, class token)
        feat = feat[-1]
    return feat.flatten(2).mean(-1) if feat.ndim > 2 else feat


@torch.no_grad()
def collect_outputs(model: nn.Module, dataset, batch_size: int,
                    num_workers: int, what: str) -> Dict[str, Tensor]:
    """Logits, pooled features (and labels, where known) of a dataset."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=pseudo_collate)
    logits, feats, labels = [], [], []
    for batch in track(loader, f'OOD: {what}', unit='batch'):
        data = model.data_preprocessor(batch, False)
        out = model.extract_feat(data['inputs'])
        logits.append(model.head(out).float())
        feats.append(_pooled(out).float())
        samples = data.get('data_samples') or []
        if samples and all('gt_label' in s for s in samples):
            labels.append(torch.cat([s.gt_label.reshape(-1)[:1]
                                     for s in samples]))
    result = dict(logits=torch.cat(logits), features=torch.cat(feats))
    if labels:
        result['labels'] = torch.cat(labels)
    return result


def compute_scores(outputs: Dict[str, Tensor], scores: Sequence[str],
                   reference: Optional[Dict[str, Tensor]], k: int,
                   mahalanobis=None) -> Dict[str, Tensor]:
    """The requested scores of one set's outputs."""
    result = {}
    for name in scores:
        if name == 'knn':
            result[name] = knn_score(reference['features'],
                                     outputs['features'], k)
        elif name == 'mahalanobis':
            result[name] = mahalanobis_score(mahalanobis,
                                             outputs['features'])
        else:
            result[name] = logit_score(outputs['logits'], name)
    return result


def _dataset_with_pipeline(dataset_cfg, pipeline):
    cfg = copy.deepcopy(dataset_cfg)
    cfg['pipeline'] = copy.deepcopy(pipeline)
    return DATASETS.build(cfg)


def run_ood(config: str,
            checkpoint: str,
            ood_folders: Sequence[str],
            work_dir: str,
            scores: Sequence[str] = OOD_SCORES,
            k: int = 10,
            tpr: float = 0.95,
            batch_size: Optional[int] = None,
            num_workers: Optional[int] = None,
            cfg_options: Optional[dict] = None) -> dict:
    """Score the config's test set against OOD folders and write a report.

    Args:
        config (str): The classifier's config.
        checkpoint (str): Its trained checkpoint.
        ood_folders (sequence[str]): Folders of OOD images.
        work_dir (str): Where the report goes.
        scores (sequence[str]): Scores to compute (see :data:`OOD_SCORES`).
        k (int): Neighbour of the ``knn`` score.
        tpr (float): ID share kept by the reported thresholds and FPRs.
        batch_size (int, optional): Defaults to the test dataloader's.
        num_workers (int, optional): Defaults to the test dataloader's.
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict: The content of ``ood_results.json``.

    Raises:
        ValueError: Unknown score, or an OOD folder without images (the
            message names it).
    """
    unknown = [s for s in scores if s not in OOD_SCORES]
    if unknown:
        raise ValueError(f'Unknown OOD score(s) {unknown}; choose from '
                         f'{list(OOD_SCORES)}.')
    model = init_model(config, checkpoint, cfg_options=cfg_options)
    cfg = model.cfg
    loader_cfg = cfg.test_dataloader
    batch_size = batch_size or loader_cfg.get('batch_size', 16)
    num_workers = (loader_cfg.get('num_workers', 0)
                   if num_workers is None else num_workers)
    pipeline = loader_cfg.dataset.pipeline
    sets = [osp.abspath(f) for f in ood_folders]
    datasets = {f: UnlabeledImageDataset(data_root=f, pipeline=pipeline)
                for f in sets}  # an empty folder fails before any forward

    def outputs_of(dataset, what):
        return collect_outputs(model, dataset, batch_size, num_workers, what)

    reference = mahalanobis = None
    if any(s in FEATURE_SCORES for s in scores):
        reference = outputs_of(_dataset_with_pipeline(
            cfg.train_dataloader.dataset, pipeline), 'training set features')
        if 'mahalanobis' in scores:
            mahalanobis = fit_mahalanobis(reference['features'],
                                          reference['labels'])
    id_scores = compute_scores(outputs_of(DATASETS.build(loader_cfg.dataset),
                                          'in-distribution test set'),
                               scores, reference, k, mahalanobis)
    ood_scores = {f: compute_scores(outputs_of(d, f'OOD {osp.basename(f)}'),
                                    scores, reference, k, mahalanobis)
                  for f, d in datasets.items()}
    results = dict(
        config=config, checkpoint=checkpoint, k=k, tpr=tpr,
        num_id=len(next(iter(id_scores.values()))),
        thresholds={s: threshold_at_tpr(v, tpr) for s, v in
                    id_scores.items()},
        ood={f: dict(num_images=len(next(iter(v.values()))),
                     metrics={s: ood_metrics(id_scores[s], v[s], tpr)
                              for s in scores})
             for f, v in ood_scores.items()})
    write_ood_report(results, id_scores, ood_scores, work_dir)
    return results


def write_ood_report(results: dict, id_scores: Dict[str, Tensor],
                     ood_scores: Dict[str, Dict[str, Tensor]],
                     work_dir: str) -> List[str]:
    """``ood_results.json``, ``ood_results.md`` and ``ood_histograms.png``."""
    os.makedirs(work_dir, exist_ok=True)
    paths = [osp.join(work_dir, n) for n in
             ('ood_results.json', 'ood_results.md', 'ood_histograms.png')]
    atomic_write_text(paths[0], lambda f: json.dump(results, f, indent=2))
    atomic_write_text(paths[1], lambda f: f.write(ood_markdown(results)))
    plot_score_histograms(id_scores, ood_scores, paths[2])
    return paths


def ood_markdown(results: dict) -> str:
    """One table per OOD folder: a row per score."""
    tpr = round(100 * results['tpr'])
    lines = [f'# OOD detection: {results["num_id"]} in-distribution test '
             f'images', '']
    for folder, entry in results['ood'].items():
        lines += [f'## {folder} ({entry["num_images"]} images)', '',
                  f'| score | AUROC | FPR@{tpr}TPR | AUPR-In | AUPR-Out | '
                  f'threshold ({tpr} % ID kept) |', '|---|---|---|---|---|---|']
        for score, m in entry['metrics'].items():
            values = list(m.values())
            lines.append(f'| {score} | ' + ' | '.join(
                f'{v:.2f}' for v in values) +
                f' | {results["thresholds"][score]:.6g} |')
        lines.append('')
    return '\n'.join(lines)


def plot_score_histograms(id_scores: Dict[str, Tensor],
                          ood_scores: Dict[str, Dict[str, Tensor]],
                          path: str) -> str:
    """A histogram panel per score: ID against every OOD folder."""
    from matplotlib.figure import Figure
    names = list(id_scores)
    fig = Figure(figsize=(4 * len(names), 3.2))
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        ax.hist(id_scores[name].numpy(), bins=30, alpha=0.6, density=True,
                label='in-distribution')
        for folder, scores in ood_scores.items():
            ax.hist(scores[name].numpy(), bins=30, alpha=0.5, density=True,
                    label=osp.basename(folder.rstrip('/')) or folder)
        ax.set_title(name)
        ax.set_xlabel('score (higher = more in-distribution)')
    fig.axes[0].legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def write_ood_threshold(results: dict, score: str, path: str) -> dict:
    """The threshold of a deployable score, as ``tools/deploy.py
    --ood-threshold`` reads it.

    Raises:
        ValueError: The score cannot be computed by a deployed model, or was
            not computed.
    """
    if score not in DEPLOYABLE_SCORES:
        raise ValueError(
            f'A deployed classifier serves probabilities, so it can flag OOD '
            f'images only by {list(DEPLOYABLE_SCORES)}, not {score!r}.')
    if score not in results['thresholds']:
        raise ValueError(f'Score {score!r} was not computed; add it to '
                         '--scores.')
    entry = dict(score=score, threshold=results['thresholds'][score],
                 tpr=results['tpr'], checkpoint=results['checkpoint'])
    atomic_write_text(path, lambda f: json.dump(entry, f, indent=2))
    return entry
