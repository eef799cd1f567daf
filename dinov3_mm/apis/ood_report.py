"""The report of an OOD evaluation: JSON, markdown tables, histograms.

:func:`write_ood_report` writes into a work dir:

- ``ood_results.json``: the results of :func:`~dinov3_mm.apis.ood.run_ood`;
- ``ood_results.md``: one table per OOD folder, a row per score;
- ``ood_hist_<score>.png``: per score, the histogram of the in-distribution
  test images against that of each OOD folder;
- ``ood_scores.csv``: every image's scores (``set``: ``in-distribution`` or
  the OOD folder, ``path``, then one column per score).
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

from torch import Tensor

from dinov3_mm.utils.atomic_write import atomic_write_text

#: The ``set`` of the in-distribution test images in ``ood_scores.csv``.
ID_SET = 'in-distribution'
#: Columns of the markdown table: metric key (``None``: the FPR) and title.
COLUMNS = (('auroc', 'AUROC'), (None, 'FPR@{tpr}TPR'),
           ('aupr_in', 'AUPR-In'), ('aupr_out', 'AUPR-Out'))


def ood_markdown(results: dict) -> str:
    """One table per OOD folder with a row per score (percentages), and the
    thresholds that keep ``tpr`` of the in-distribution images."""
    tpr = round(100 * results['tpr'])
    titles = [t.format(tpr=tpr) for _, t in COLUMNS]
    lines = [f'# OOD detection: {results["num_id"]} in-distribution test '
             f'images', '',
             'Scores are higher for more in-distribution images; metrics in '
             f'percent, in-distribution is the positive class. k-NN: k = '
             f'{results["k"]} over {results["num_train"]} training images.',
             '']
    for folder, entry in results['ood'].items():
        skipped = (f', {entry["num_skipped"]} unreadable skipped'
                   if entry.get('num_skipped') else '')
        lines += [f'## {folder} ({entry["num_images"]} images{skipped})', '',
                  '| score | ' + ' | '.join(titles) + ' |',
                  '|---|' + '---:|' * len(titles)]
        for score, metrics in entry['metrics'].items():
            cells = [metrics[key or results['fpr_key']] for key, _ in COLUMNS]
            lines.append(f'| {score} | ' +
                         ' | '.join(f'{v:.2f}' for v in cells) + ' |')
        lines.append('')
    lines += [f'Thresholds keeping {tpr} % of the in-distribution test '
              'images (score >= threshold):', '']
    lines += [f'- {score}: {value:.6g}'
              for score, value in results['thresholds'].items()]
    return '\n'.join(lines) + '\n'


def _short(folder: str, limit: int = 40) -> str:
    """A folder name for a legend: its path, or the end of a long one."""
    folder = folder.rstrip('/\\') or folder
    return folder if len(folder) <= limit else \
        '\u2026' + folder[-(limit - 1):]


def plot_score_histogram(score: str, id_scores: Tensor,
                         ood_scores: Dict[str, Tensor], path: str) -> str:
    """The histogram of one score: in-distribution against each OOD set.

    Args:
        score (str): The score's name (the title).
        id_scores (Tensor): ``(N,)`` in-distribution scores.
        ood_scores (dict): OOD folder to its ``(M,)`` scores.
        path (str): The PNG to write.

    Returns:
        str: ``path``.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    sets = {'in-distribution': id_scores.numpy()}
    sets.update({_short(f): v.numpy() for f, v in ood_scores.items()})
    values = np.concatenate(list(sets.values()))
    low, high = float(values.min()), float(values.max())
    bins = np.linspace(low, high if high > low else low + 1, 31)
    fig = Figure(figsize=(5.5, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, data in sets.items():
        ax.hist(data, bins=bins, alpha=0.5, density=True, label=name,
                histtype='stepfilled', edgecolor='black', linewidth=0.4)
    ax.set_title(f'{score} (higher = more in-distribution)')
    ax.set_xlabel(score)
    ax.set_ylabel('density')
    ax.legend(fontsize='small')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, format='png')
    return path


def write_score_table(id_scores: Dict[str, Tensor],
                      ood_scores: Dict[str, Dict[str, Tensor]],
                      paths: Dict[str, Sequence[str]], path: str) -> str:
    """``ood_scores.csv``: one row per image, its set, file and scores."""
    names = list(id_scores)
    sets = dict({ID_SET: id_scores}, **ood_scores)

    def write_rows(f) -> None:
        writer = csv.writer(f)
        writer.writerow(['set', 'path'] + names)
        for name, scores in sets.items():
            for i, image in enumerate(paths[name]):
                writer.writerow([name, image] + [
                    f'{float(scores[s][i]):.8g}' for s in names])

    atomic_write_text(path, write_rows, newline='')
    return path


def write_ood_report(results: dict, id_scores: Dict[str, Tensor],
                     ood_scores: Dict[str, Dict[str, Tensor]],
                     work_dir: str,
                     paths: Optional[Dict[str, Sequence[str]]] = None
                     ) -> Dict[str, str]:
    """Write the JSON, the markdown, one histogram PNG per score and (with
    ``paths``) the per-image scores.

    ``results['files']`` gets the written paths (``json``, ``markdown``,
    ``histograms``: score to PNG, ``scores``: the CSV) before the JSON is
    written.

    Args:
        results (dict): From :func:`~dinov3_mm.apis.ood.run_ood`.
        id_scores (dict): Score to the in-distribution scores.
        ood_scores (dict): OOD folder to (score to its scores).
        work_dir (str): The output folder (created).
        paths (dict, optional): :data:`ID_SET` and each OOD folder to the
            image files in score order.

    Returns:
        dict: ``results['files']``.
    """
    os.makedirs(work_dir, exist_ok=True)
    files = dict(json=osp.join(work_dir, 'ood_results.json'),
                 markdown=osp.join(work_dir, 'ood_results.md'),
                 histograms={})
    if paths is not None:
        files['scores'] = write_score_table(
            id_scores, ood_scores, paths, osp.join(work_dir,
                                                   'ood_scores.csv'))
    for score, values in id_scores.items():
        files['histograms'][score] = plot_score_histogram(
            score, values, {f: s[score] for f, s in ood_scores.items()},
            osp.join(work_dir, f'ood_hist_{score}.png'))
    results['files'] = files
    atomic_write_text(files['markdown'],
                      lambda f: f.write(ood_markdown(results)))
    atomic_write_text(files['json'],
                      lambda f: json.dump(results, f, indent=2))
    return files
