"""Validation pictures of volume slices that show something.

The core ``SegVisHook`` draws the first samples of the evaluated set; for
slices of volumes those are the empty edge slices of the first case. This
hook looks at every sample and draws the ones with the most foreground (in
the ground truth or the prediction), spread over the cases, after the
evaluation; among slices without foreground the most varied images win.
"""
import logging
import math
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
from mmengine.logging import print_log

from dinov3_mm.engine import SegVisHook
from dinov3_mm.registry import HOOKS


class Candidate(NamedTuple):
    """A sample that may be drawn, with what drawing it needs."""
    rank: tuple
    case: str
    sample: object
    batch_input: object


def _labels(value) -> Optional[np.ndarray]:
    if value is None:
        return None
    data = getattr(value, 'data', value)
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    return data[0] if data.ndim == 3 and data.shape[0] == 1 else data


def foreground_fraction(labels: Optional[np.ndarray],
                        background: Sequence[int] = (0, ),
                        ignore_index: int = 255) -> float:
    """Share of labelled pixels that are foreground (not ``background``,
    not ``ignore_index``); 0 for None or no labelled pixel."""
    if labels is None:
        return 0.0
    labels = np.asarray(labels)
    labelled = labels != ignore_index
    count = int(labelled.sum())
    if not count:
        return 0.0
    foreground = labelled & ~np.isin(labels, list(background))
    return float(foreground.sum()) / count


@HOOKS.register_module()
class VolumeSliceVisHook(SegVisHook):
    """``SegVisHook`` that draws the slices with content.

    Every validation / test sample is ranked by whether it has foreground
    at all, then its foreground share in the ground truth, then in the
    prediction, then the intensity variance of its input (for slices
    without any foreground). The best slice of each case
    (``metainfo['case']``) comes first, so the panels cover several
    volumes; the rest are filled with the best slices overall, at most
    ``max_per_case`` from one case while other cases have candidates. The
    chosen ``num_samples`` are drawn at the end of the evaluation, in case
    and slice order, named by their ``slice_id``. Memory: at most
    ``2 * num_samples`` samples are kept. Other arguments as
    :class:`SegVisHook`.

    Args:
        background (sequence[int]): Labels that are not foreground.
            Defaults to ``(0,)``.
        ignore_index (int): Label not counted. Defaults to 255.
        max_per_case (int, optional): Slices of one case while others have
            candidates; defaults to half of ``num_samples`` (at least 1).
    """

    def __init__(self,
                 *args,
                 background: Sequence[int] = (0, ),
                 ignore_index: int = 255,
                 max_per_case: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.background = tuple(int(b) for b in background)
        self.ignore_index = int(ignore_index)
        if max_per_case is None:
            max_per_case = max(1, math.ceil(self.num_samples / 2))
        if max_per_case < 1:
            raise ValueError(f'VolumeSliceVisHook max_per_case='
                             f'{max_per_case} must be >= 1.')
        self.max_per_case = max_per_case
        self._top: List[Candidate] = []
        self._case_best: Dict[str, Candidate] = {}
        self._order = 0

    def _start(self, runner, split: str, active: bool) -> None:
        super()._start(runner, split, active)
        self._top, self._case_best, self._order = [], {}, 0

    def score(self, sample, batch_input) -> tuple:
        """``(any foreground, ground-truth share, prediction share,
        input variance)``; larger is better."""
        gt, pred = (foreground_fraction(_labels(sample.get(key)),
                                        self.background, self.ignore_index)
                    for key in ('gt_sem_seg', 'pred_sem_seg'))
        variance = 0.0
        if batch_input is not None:
            variance = float(np.asarray(_labels(batch_input),
                                        np.float32).var())
        return (gt + pred > 0, gt, pred, variance)

    def _offer(self, key: tuple, case: str, sample, batch_input) -> None:
        """Keep a candidate among the best overall and per case."""
        # earlier samples win ties: the order is part of the rank
        candidate = Candidate(key + (-self._order, ), case, sample,
                              batch_input)
        self._order += 1
        self._top.append(candidate)
        if len(self._top) > self.num_samples:
            self._top.remove(min(self._top, key=lambda c: c.rank))
        best = self._case_best.get(case)
        if best is None or candidate.rank > best.rank:
            self._case_best[case] = candidate
            if len(self._case_best) > self.num_samples:
                worst = min(self._case_best.values(), key=lambda c: c.rank)
                del self._case_best[worst.case]

    def selected(self) -> List['Candidate']:
        """The chosen candidates, in case and slice order."""
        by_rank = lambda c: c.rank  # noqa: E731
        chosen = sorted(self._case_best.values(), key=by_rank,
                        reverse=True)[:self.num_samples]
        counts = {}
        for c in chosen:
            counts[c.case] = counts.get(c.case, 0) + 1
        rest = [c for c in sorted(self._top, key=by_rank, reverse=True)
                if all(c is not k for k in chosen)]
        for capped in (True, False):
            for c in list(rest):
                if len(chosen) >= self.num_samples:
                    break
                if capped and counts.get(c.case, 0) >= self.max_per_case:
                    continue
                chosen.append(c)
                rest.remove(c)
                counts[c.case] = counts.get(c.case, 0) + 1
        return sorted(chosen, key=lambda c: (
            c.case, c.sample.metainfo.get('slice_index', 0)))

    def _iter(self, runner, data_batch, outputs) -> None:
        if not self._active or self._failed:
            return
        inputs = (data_batch or {}).get('inputs') if isinstance(
            data_batch, dict) else None
        try:
            for i, sample in enumerate(outputs or []):
                batch_input = (inputs[i] if inputs is not None
                               and i < len(inputs) else None)
                light = sample.cpu()
                if 'seg_logits' in light:
                    del light.seg_logits
                meta = light.metainfo
                case = str(meta.get('case', meta.get('img_path', '')))
                self._offer(self.score(light, batch_input), case, light,
                            batch_input)
        except Exception as exc:  # pictures must never stop a training run
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self._failed = True
        print_log(
            f'VolumeSliceVisHook: choosing {self._split} slices failed: '
            f'{type(exc).__name__}: {exc}', logger='current',
            level=logging.WARNING)

    def _finish(self, runner) -> None:
        if not self._active or self._failed or not self._top:
            return
        chosen = self.selected()
        self._top, self._case_best = [], {}
        batch = dict(inputs=[c.batch_input for c in chosen])
        try:
            self._draw(runner, batch, [c.sample for c in chosen])
        except Exception as exc:  # pictures must never stop a training run
            self._fail(exc)
            return
        print_log(
            f'VolumeSliceVisHook: saved {self._seen} {self._split} panels '
            f'(slices with the most foreground) to {self._folder}',
            logger='current')

    def _name(self, meta: dict) -> str:
        slice_id = meta.get('slice_id')
        if not slice_id:
            return super()._name(meta)
        name, i = str(slice_id), 1
        while name in self._names:
            name, i = f'{slice_id}_{i}', i + 1
        self._names.add(name)
        return name + '.png'

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Draw the chosen validation slices."""
        self._finish(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        """Draw the chosen test slices."""
        self._finish(runner)
