"""Out-of-distribution (OOD) evaluation of a trained classifier.

What ``tools/test_ood.py`` runs. The config's test set is the
in-distribution (ID) set; each OOD folder is any folder tree of images. Every
image goes once through the config's test pipeline and the model: its logits
give the ``msp``, ``max_logit`` and ``energy`` scores, its pooled feature (the
head's input, :meth:`ClsHead.pre_logits`) the ``knn`` and ``mahalanobis``
scores, which compare it with the features of the config's training set (read
with the test pipeline, without augmentation). The definitions are in
:mod:`dinov3_mm.evaluation.functional.ood`; higher scores mean more
in-distribution.

Call graph of :func:`run_ood`::

    list_ood_images           every OOD folder listed and header-checked
    init_model                + check_ood_model (a single-label classifier)
    collect_outputs           logits and pooled features of the train split
                              (for knn / mahalanobis), the test set and each
                              OOD folder
    compute_scores            per set and score
    ood_metrics               per OOD folder and score
    write_ood_report          ood_results.json / .md, ood_scores.csv,
                              ood_hist_<score>.png
"""
import copy
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from dinov3_mm.datasets.transforms.cache import flatten_cached
from dinov3_mm.evaluation.functional.ood import (FEATURE_SCORES, OOD_SCORES,
                                                 fit_mahalanobis, fpr_key,
                                                 knn_score, logit_score,
                                                 mahalanobis_score,
                                                 ood_metrics,
                                                 threshold_at_tpr)
from dinov3_mm.registry import DATASETS
from dinov3_mm.utils.atomic_write import atomic_write_text
from dinov3_mm.utils.progress import track

from .inference import build_test_pipeline, init_model, list_images
from .ood_report import ID_SET, write_ood_report
from .unreadable import (Skipped, UnreadableImageError, describe_unreadable,
                         header_problems, run_load_pipeline,
                         write_skipped_csv)

#: Scores a deployed classifier computes from the probabilities it serves
#: (``tools/deploy.py --ood-threshold``); the others need logits or
#: features that the exported model does not return.
DEPLOYABLE_SCORES = ('msp', )
#: Written by ``tools/test_ood.py --write-threshold``, read by
#: ``tools/deploy.py --ood-threshold``.
THRESHOLD_FILE = 'ood_threshold.json'


class ImageFiles(Dataset):
    """Image files through a test pipeline; an unreadable file gives its
    :class:`UnreadableImageError` in place of a sample.

    Args:
        paths (sequence[str]): The files.
        pipeline (callable): From
            :func:`~dinov3_mm.apis.inference.build_test_pipeline`.
    """

    def __init__(self, paths: Sequence[str], pipeline) -> None:
        self.paths = list(paths)
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            return run_load_pipeline(self.pipeline,
                                     dict(img_path=self.paths[index]))
        except UnreadableImageError as exc:
            return exc


def _collate(items: list) -> Tuple[Optional[dict], List[Tuple[str, str]]]:
    """A batch of the readable samples, and the unreadable ones."""
    samples = [s for s in items if not isinstance(s, UnreadableImageError)]
    errors = [(e.path, e.reason) for e in items
              if isinstance(e, UnreadableImageError)]
    return (pseudo_collate(samples) if samples else None), errors


def check_ood_model(model: nn.Module, config: str) -> None:
    """Refuse a model whose outputs are not single-label class logits.

    Raises:
        ValueError: A segmentor or feature model (no ``head``), or a
            multi-label head (its sigmoid scores are not a distribution).
    """
    head = getattr(model, 'head', None)
    if head is None or hasattr(model, 'decode_head') or \
            not hasattr(head, 'pre_logits'):
        raise ValueError(
            f'OOD detection scores the logits and pooled features of a '
            f'classifier; {config} builds a {type(model).__name__} without '
            'a classification head.')
    if getattr(head, 'multi_label', False):
        raise ValueError(
            f'{config} has a multi-label head ({type(head).__name__}): its '
            'sigmoid scores are no distribution over classes, so msp, '
            'max_logit and energy do not apply. Use a single-label '
            'classifier.')


@torch.no_grad()
def collect_outputs(model: nn.Module, loader, desc: str,
                    skipped: Optional[Skipped] = None) -> Dict[str, Tensor]:
    """Logits, pooled features (and labels, where every sample has one) of
    the images of a dataloader.

    Args:
        model (nn.Module): A classifier (:func:`check_ood_model`).
        loader: Yields mmengine batches, or ``(batch, unreadable)`` pairs
            from an :class:`ImageFiles` loader.
        desc (str): Label of the progress bar.
        skipped (list, optional): Receives ``(path, reason)`` of unreadable
            files; without it an unreadable file raises.

    Returns:
        dict: ``logits`` ``(N, K)``, ``features`` ``(N, C)`` (float32, CPU),
        ``paths`` (the image files, in order) and ``labels`` ``(N,)`` when
        known.

    Raises:
        UnreadableImageError: An unreadable file (without ``skipped``).
    """
    logits, feats, labels, paths = [], [], [], []
    labelled = True
    for batch in track(loader, desc, unit='batch'):
        if isinstance(batch, tuple):
            batch, errors = batch
            if errors and skipped is None:
                raise UnreadableImageError(*errors[0])
            if errors:
                skipped.extend(errors)
            if batch is None:
                continue
        data = model.data_preprocessor(batch, False)
        out = model.extract_feat(data['inputs'])
        feats.append(model.head.pre_logits(out).float().cpu())
        logits.append(model.head(out).float().cpu())
        samples = data.get('data_samples') or []
        paths += [s.metainfo.get('img_path', '') for s in samples]
        labelled = labelled and bool(samples) and all(
            'gt_label' in s for s in samples)
        if labelled:
            labels.append(torch.cat([s.gt_label.reshape(-1)[:1].cpu()
                                     for s in samples]))
    if not logits:
        return dict(logits=torch.zeros(0, model.head.num_classes),
                    features=torch.zeros(0, model.head.in_channels),
                    paths=[])
    result = dict(logits=torch.cat(logits), features=torch.cat(feats),
                  paths=paths)
    if labelled:
        result['labels'] = torch.cat(labels).long()
    return result


def compute_scores(outputs: Dict[str, Tensor], scores: Sequence[str],
                   train_features: Optional[Tensor] = None, k: int = 10,
                   mahalanobis: Optional[Dict[str, Tensor]] = None
                   ) -> Dict[str, Tensor]:
    """The requested scores of one set's outputs.

    Args:
        outputs (dict): From :func:`collect_outputs`.
        scores (sequence[str]): Names from
            :data:`~dinov3_mm.evaluation.functional.ood.OOD_SCORES`.
        train_features (Tensor, optional): Reference of ``knn``.
        k (int): Neighbour of ``knn``.
        mahalanobis (dict, optional): From
            :func:`~dinov3_mm.evaluation.functional.ood.fit_mahalanobis`.

    Returns:
        dict: Score name to ``(N,)`` float64 scores.
    """
    result = {}
    for name in scores:
        if name == 'knn':
            result[name] = knn_score(train_features, outputs['features'], k)
        elif name == 'mahalanobis':
            result[name] = mahalanobis_score(mahalanobis,
                                             outputs['features'])
        else:
            result[name] = logit_score(outputs['logits'], name)
    return result


def list_ood_images(folders: Sequence[str], skip_unreadable: bool = False
                    ) -> Dict[str, Tuple[List[str], Skipped]]:
    """The image files of every OOD folder (recursively) whose header reads.

    Args:
        folders (sequence[str]): The OOD folders.
        skip_unreadable (bool): Leave out files whose header does not read
            (missing, empty, not an image) instead of raising.

    Returns:
        dict: Folder to its readable files and ``(path, reason)`` of the
        files left out.

    Raises:
        FileNotFoundError: A folder does not exist.
        ValueError: A folder holds no image (the message names it), or
            (without ``skip_unreadable``) a file cannot be read.
    """
    listed = {}
    for folder in folders:
        if not osp.isdir(folder):
            raise FileNotFoundError(f'OOD folder {folder} does not exist (or '
                                    'is not a folder).')
        try:
            paths = list_images(folder)
        except ValueError as exc:
            raise ValueError(f'OOD folder {folder} holds no images: {exc}') \
                from exc
        problems = header_problems(paths)
        if problems and not skip_unreadable:
            raise ValueError(
                describe_unreadable(problems) + '\nNothing was run: fix or '
                'remove them, or pass --skip-unreadable to score the others.')
        bad = {p for p, _ in problems}
        listed[folder] = ([p for p in paths if p not in bad], problems)
    return listed


def _config_dataset(dataset_cfg, pipeline):
    """A dataset of the config read with ``pipeline`` (decoded once)."""
    cfg = copy.deepcopy(dataset_cfg)
    cfg['pipeline'] = [copy.deepcopy(t) for t in flatten_cached(pipeline)]
    return DATASETS.build(cfg)


def _check_options(scores: Sequence[str], k: int, tpr: float) -> None:
    unknown = [s for s in scores if s not in OOD_SCORES]
    if unknown or not scores:
        raise ValueError(f'Unknown OOD score(s) {unknown}; choose from '
                         f'{list(OOD_SCORES)}.')
    if k < 1:
        raise ValueError(f'--k {k} must be at least 1.')
    if not 0 < tpr <= 1:
        raise ValueError(f'--tpr {tpr} must be in (0, 1].')


def run_ood(config: str,
            checkpoint: str,
            ood_folders: Sequence[str],
            work_dir: str,
            scores: Sequence[str] = OOD_SCORES,
            k: int = 10,
            tpr: float = 0.95,
            batch_size: Optional[int] = None,
            num_workers: Optional[int] = None,
            device: str = 'cpu',
            skip_unreadable: bool = False,
            cfg_options: Optional[dict] = None) -> dict:
    """Score the config's test set against OOD folders and write a report.

    Args:
        config (str): The classifier's config.
        checkpoint (str): Its trained checkpoint.
        ood_folders (sequence[str]): Folders of OOD images (searched
            recursively).
        work_dir (str): Where the report goes.
        scores (sequence[str]): Scores to compute (see
            :data:`~dinov3_mm.evaluation.functional.ood.OOD_SCORES`).
        k (int): Neighbour of the ``knn`` score (at most the number of
            training images; a smaller training set lowers it, with a
            warning). Defaults to 10.
        tpr (float): ID share kept by the reported thresholds and FPRs.
            Defaults to 0.95.
        batch_size (int, optional): Defaults to the test dataloader's.
        num_workers (int, optional): Defaults to the test dataloader's.
        device (str): Where the model runs. Defaults to ``'cpu'``.
        skip_unreadable (bool): Leave out unreadable OOD images (listed in
            ``ood_skipped.csv``) instead of stopping.
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict: The content of ``ood_results.json``: ``thresholds`` (score to
        the threshold keeping ``tpr`` of the ID images), ``ood`` (folder to
        ``num_images``, ``num_skipped`` and ``metrics``: score to AUROC,
        FPR, AUPR-In, AUPR-Out in percent), counts and settings.

    Raises:
        ValueError: Unknown score, an OOD folder without images (the message
            names it), an unreadable OOD image (without ``skip_unreadable``)
            or a model that is not a single-label classifier.
        FileNotFoundError: An OOD folder or the checkpoint does not exist.
    """
    _check_options(scores, k, tpr)
    listed = list_ood_images(ood_folders, skip_unreadable)
    model = init_model(config, checkpoint, device=device,
                       cfg_options=cfg_options)
    check_ood_model(model, config)
    cfg = model.cfg
    test_loader = cfg.test_dataloader
    batch_size = batch_size or test_loader.get('batch_size', 16)
    num_workers = (test_loader.get('num_workers', 0)
                   if num_workers is None else num_workers)
    pipeline = test_loader.dataset.pipeline

    def loader(dataset, collate=pseudo_collate):
        return DataLoader(dataset, batch_size=batch_size, shuffle=False,
                          num_workers=num_workers, collate_fn=collate)

    train_feats = mahalanobis = None
    num_train = 0
    if any(s in FEATURE_SCORES for s in scores):
        train = collect_outputs(model, loader(_config_dataset(
            cfg.train_dataloader.dataset, pipeline)), 'OOD: training set')
        train_feats, num_train = train['features'], len(train['features'])
        if k > num_train:
            print_log(f'OOD: k={k} but the training set has {num_train} '
                      f'images; the k-NN score uses k={num_train}.',
                      logger='current', level=logging.WARNING)
            k = num_train
        if 'mahalanobis' in scores:
            if 'labels' not in train:
                raise ValueError(
                    f'mahalanobis needs class labels of the training set of '
                    f'{config}, and its samples have no gt_label; leave it '
                    'out of --scores.')
            mahalanobis = fit_mahalanobis(train_feats, train['labels'])
    test_set = _config_dataset(test_loader.dataset, pipeline)
    id_outputs = collect_outputs(model, loader(test_set), 'OOD: test set')
    id_scores = compute_scores(id_outputs, scores, train_feats, k,
                               mahalanobis)
    scored = {ID_SET: id_outputs['paths']}
    ood_scores, entries, skipped = {}, {}, []
    image_pipeline = build_test_pipeline(cfg)
    for folder, (files, lost) in listed.items():
        outputs = collect_outputs(
            model, loader(ImageFiles(files, image_pipeline), _collate),
            f'OOD: {folder}', lost if skip_unreadable else None)
        skipped += lost
        if not len(outputs['logits']):
            raise ValueError(f'None of the images of OOD folder {folder} '
                             'could be read.')
        ood_scores[folder] = compute_scores(outputs, scores, train_feats, k,
                                            mahalanobis)
        scored[folder] = outputs['paths']
        entries[folder] = dict(
            num_images=len(outputs['logits']),
            num_skipped=len(lost),
            metrics={s: ood_metrics(id_scores[s], ood_scores[folder][s], tpr)
                     for s in scores})
    results = dict(
        config=config, checkpoint=checkpoint, scores=list(scores), k=k,
        tpr=tpr, fpr_key=fpr_key(tpr), num_train=num_train,
        num_id=len(test_set),
        thresholds={s: threshold_at_tpr(v, tpr) for s, v in
                    id_scores.items()},
        ood=entries)
    if skipped:
        results['skipped'] = [list(item) for item in skipped]
        results['skipped_list'] = write_skipped_csv(
            skipped, osp.join(work_dir, 'ood_skipped.csv'))
    write_ood_report(results, id_scores, ood_scores, work_dir, scored)
    return results


def write_ood_threshold(results: dict, score: str, path: str) -> dict:
    """Write the threshold of a deployable score for ``tools/deploy.py
    --ood-threshold``.

    The threshold is the one :func:`run_ood` reported for ``score`` (it
    keeps ``results['tpr']`` of the in-distribution test images); a served
    image whose score is below it is flagged ``OOD``.

    Args:
        results (dict): From :func:`run_ood`.
        score (str): One of :data:`DEPLOYABLE_SCORES`.
        path (str): The JSON file to write.

    Returns:
        dict: What was written: ``score``, ``threshold``, ``tpr``, the
        ``checkpoint`` and ``config`` it was measured on, and the FPR per OOD
        folder.

    Raises:
        ValueError: The score cannot be computed by a deployed model, or was
            not computed.
    """
    if score not in DEPLOYABLE_SCORES:
        raise ValueError(
            f'A deployed classifier serves probabilities, so it can flag OOD '
            f'images only by {list(DEPLOYABLE_SCORES)}, not {score!r} (which '
            'needs logits or features).')
    if score not in results['thresholds']:
        raise ValueError(f'Score {score!r} was not computed; add it to '
                         '--scores.')
    entry = dict(score=score, threshold=results['thresholds'][score],
                 tpr=results['tpr'], checkpoint=results['checkpoint'],
                 config=results['config'],
                 fpr={folder: e['metrics'][score][results['fpr_key']]
                      for folder, e in results['ood'].items()})
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_write_text(path, lambda f: json.dump(entry, f, indent=2))
    return entry
