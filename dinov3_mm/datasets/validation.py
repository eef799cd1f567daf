"""Dataset health checks: class balance, broken, odd and duplicate images."""
import hashlib
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import (Any, ClassVar, Dict, List, Optional, Sequence, Tuple,
                    Union)

import cv2

from .transforms.loading import read_image

CHECKS = ('unreadable', 'empty_classes', 'imbalance', 'duplicates',
          'duplicates_within', 'too_small', 'too_dark', 'too_bright', 'flat')
DEFAULT_FAIL_ON = ('unreadable', 'empty_classes', 'imbalance', 'duplicates')
MAX_LISTED = 20


@dataclass
class ValidationRules:
    """Thresholds of the checks and which of them fail the dataset.

    Args:
        max_imbalance (float): Largest allowed ratio of the biggest to the
            smallest non-empty class count. Defaults to 10.
        min_size (int): Smallest allowed image side in pixels. Defaults to 32.
        dark_mean (float): Images with a mean grey level below this are too
            dark. Defaults to 10.
        bright_mean (float): ... above this are too bright. Defaults to 245.
        flat_std (float): Images whose grey-level standard deviation is below
            this are flat. Defaults to 2.
        fail_on (sequence[str]): Checks that fail the dataset; the others
            only warn. Names from :data:`CHECKS`, or ``'all'``. Defaults to
            :data:`DEFAULT_FAIL_ON`.
        workers (int): Threads reading images. Defaults to 8.
    """
    max_imbalance: float = 10.0
    min_size: int = 32
    dark_mean: float = 10.0
    bright_mean: float = 245.0
    flat_std: float = 2.0
    fail_on: Sequence[str] = DEFAULT_FAIL_ON
    workers: int = 8
    #: The checks ``fail_on`` may name (subclasses add their own).
    known_checks: ClassVar[Tuple[str, ...]] = CHECKS

    def __post_init__(self) -> None:
        checks = self.known_checks
        fail_on = ([self.fail_on] if isinstance(self.fail_on, str) else
                   list(self.fail_on))
        if 'all' in fail_on:
            fail_on = list(checks)
        unknown = [c for c in fail_on if c not in checks and c != 'none']
        if unknown:
            raise ValueError(f'fail_on names unknown check(s) {unknown}; '
                             f'known: {checks} (or "all", "none").')
        self.fail_on = tuple(c for c in fail_on if c != 'none')


@dataclass
class Report:
    """Result of :func:`validate_dataset`.

    Attributes:
        source (str): What was validated.
        classes (tuple): Class names.
        counts (dict): ``{split: {class: count}}``.
        imbalance (float): Max / min of the non-empty total class counts.
        issues (dict): ``{check: [(path or class, detail), ...]}``.
        rules (ValidationRules): The rules applied.
        failed_rules (list[str]): Checks in ``rules.fail_on`` with issues.
    """
    source: str
    classes: tuple
    counts: Dict[str, Dict[str, int]]
    imbalance: float
    issues: Dict[str, List[Tuple[str, str]]]
    rules: ValidationRules
    failed_rules: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no failing rule has issues."""
        return not self.failed_rules

    @property
    def num_images(self) -> int:
        """Number of samples over every split."""
        return sum(sum(c.values()) for c in self.counts.values())

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable view."""
        out = asdict(self)
        out['rules']['fail_on'] = list(self.rules.fail_on)
        out['classes'] = list(self.classes)
        out['issues'] = {k: [list(i) for i in v]
                         for k, v in self.issues.items()}
        out['passed'] = self.passed
        out['num_images'] = self.num_images
        return out

    def _table(self) -> List[str]:
        splits = list(self.counts)
        width = max([len('class')] + [len(c) for c in self.classes])
        cols = splits + ['total']
        lines = ['  '.join([f'{"class":<{width}}'] +
                           [f'{c:>7}' for c in cols])]
        for name in self.classes:
            row = [self.counts[s].get(name, 0) for s in splits]
            lines.append('  '.join([f'{name:<{width}}'] +
                                   [f'{n:>7}' for n in row + [sum(row)]]))
        return lines

    def render(self) -> str:
        """A readable multi-line report."""
        per_split = ', '.join(f'{s} {sum(c.values())}'
                              for s, c in self.counts.items())
        lines = [f'Dataset: {self.source}',
                 f'Classes: {len(self.classes)}   Images: {self.num_images} '
                 f'({per_split})', '']
        lines += self._table() + ['']
        lines.append(f'Imbalance ratio (max/min class count): '
                     f'{self.imbalance:.2f} '
                     f'(limit {self.rules.max_imbalance:g})')
        return '\n'.join(lines + self._render_checks(CHECKS))

    def _render_checks(self, checks: Sequence[str]) -> List[str]:
        """The ``Checks:`` block (a few examples per check) and the result."""
        lines = ['', 'Checks:']
        for check in checks:
            found = self.issues.get(check, [])
            tag = ('FAIL' if check in self.failed_rules else
                   'warn' if found else ' ok ')
            lines.append(f'  [{tag}] {check}: '
                         f'{len(found) if found else "none"}')
            for what, detail in found[:MAX_LISTED]:
                lines.append(f'      {what}: {detail}')
            if len(found) > MAX_LISTED:
                lines.append(f'      ... and {len(found) - MAX_LISTED} more')
        lines += ['', 'Result: ' + (
            'PASSED' if self.passed else
            f'FAILED ({", ".join(self.failed_rules)})')]
        return lines


def _inspect(path: str) -> Dict[str, Any]:
    """Hash, size and grey-level statistics of one image, or its error."""
    try:
        with open(path, 'rb') as f:
            digest = hashlib.sha1(f.read()).hexdigest()
        img = read_image(path)
    except (OSError, ValueError) as exc:
        return dict(error=str(exc))
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    mean, std = cv2.meanStdDev(gray)
    return dict(sha1=digest, shape=img.shape[:2], mean=float(mean[0, 0]),
                std=float(std[0, 0]))


def _load_sources(source: Any,
                  allow_outside: bool = False) -> List[Tuple[Any, str]]:
    from .annotation_file import AnnotationFileDataset
    from .image_folder import ImageFolderDataset
    if isinstance(source, (list, tuple)):
        return [item for s in source
                for item in _load_sources(s, allow_outside)]
    if isinstance(source, str):
        if osp.isdir(source):
            dataset = ImageFolderDataset(source, skip_empty_classes=True)
        else:
            dataset = AnnotationFileDataset(
                source, check_files=False,
                allow_paths_outside_root=allow_outside)
        return [(dataset, source)]
    return [(source, type(source).__name__)]


def _samples(dataset: Any) -> List[Tuple[str, Any, str]]:
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    default = getattr(dataset, 'split', None) or 'all'
    out = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        label = info.get('gt_label')
        labels = list(label) if isinstance(label, (list, tuple)) else [label]
        out.append((info['img_path'], labels, info.get('split') or default))
    return out


def _count(samples, classes) -> Dict[str, Dict[str, int]]:
    counts: Dict[str, Dict[str, int]] = {}
    for _, labels, split in samples:
        split_counts = counts.setdefault(split, {c: 0 for c in classes})
        for label in labels:
            if label is not None:
                split_counts[classes[int(label)]] += 1
    return counts


def _duplicates(samples, stats) -> Tuple[list, list]:
    groups: Dict[str, List[Tuple[str, str]]] = {}
    for (path, _, split), info in zip(samples, stats):
        if 'sha1' in info:
            groups.setdefault(info['sha1'], []).append((path, split))
    across, within = [], []
    for members in groups.values():
        if len(members) < 2:
            continue
        splits = sorted({s for _, s in members})
        paths = [p for p, _ in members]
        if len(splits) > 1:
            across.append((paths[0], f'same bytes in splits {splits}: '
                           f'{paths[1:]}'))
        else:
            within.append((paths[0], f'same bytes in {splits[0]}: '
                           f'{paths[1:]}'))
    return across, within


def _image_issues(samples, stats, rules: ValidationRules) -> dict:
    issues: Dict[str, List[Tuple[str, str]]] = {c: [] for c in CHECKS}
    for (path, _, _), info in zip(samples, stats):
        if 'error' in info:
            issues['unreadable'].append((path, info['error']))
            continue
        h, w = info['shape']
        if min(h, w) < rules.min_size:
            issues['too_small'].append(
                (path, f'{h}x{w} < min side {rules.min_size}'))
        if info['mean'] < rules.dark_mean:
            issues['too_dark'].append(
                (path, f'mean {info["mean"]:.1f} < {rules.dark_mean:g}'))
        if info['mean'] > rules.bright_mean:
            issues['too_bright'].append(
                (path, f'mean {info["mean"]:.1f} > {rules.bright_mean:g}'))
        if info['std'] < rules.flat_std:
            issues['flat'].append(
                (path, f'std {info["std"]:.2f} < {rules.flat_std:g}'))
    return issues


def validate_dataset(source: Union[str, Any, Sequence[Any]],
                     rules: Optional[ValidationRules] = None,
                     allow_paths_outside_root: bool = False,
                     **rule_overrides: Any) -> Report:
    """Check a dataset and report what is wrong with it.

    Args:
        source (str | dataset | sequence): An ImageFolder root (both
            layouts), a CSV/JSON annotation file, a built dataset (data
            infos with ``img_path``, ``gt_label`` and optionally ``split``)
            or a list of these (e.g. the train and val datasets).
        rules (ValidationRules, optional): Thresholds and failing checks.
            Defaults to ``ValidationRules()``.
        allow_paths_outside_root (bool): Accept annotation-file paths that
            leave the file's folder (see :class:`AnnotationFileDataset`).
            Defaults to False.
        **rule_overrides: Fields of :class:`ValidationRules` to override.

    Returns:
        Report: Counts, imbalance, issues per check and the failed rules.

    Raises:
        ValueError: The annotations themselves are invalid (e.g. a label not
            in the class list); the message names the file and line.
    """
    rules = rules or ValidationRules()
    if rule_overrides:
        rules = ValidationRules(**{**asdict(rules), **rule_overrides})
    loaded = _load_sources(source, allow_paths_outside_root)
    classes = tuple(loaded[0][0].metainfo['classes'])
    samples, empty_folders = [], []
    for dataset, _ in loaded:
        if tuple(dataset.metainfo['classes']) != classes:
            raise ValueError('validate_dataset: the datasets have different '
                             'class lists; validate them separately.')
        samples += _samples(dataset)
        empty_folders += getattr(dataset, 'empty_class_folders', [])
    with ThreadPoolExecutor(max(1, rules.workers)) as pool:
        stats = list(pool.map(_inspect, [s[0] for s in samples]))
    counts = _count(samples, classes)
    totals = {c: sum(split[c] for split in counts.values()) for c in classes}
    nonzero = [n for n in totals.values() if n > 0]
    imbalance = max(nonzero) / min(nonzero) if nonzero else 0.0
    issues = _image_issues(samples, stats, rules)
    issues['duplicates'], issues['duplicates_within'] = _duplicates(
        samples, stats)
    issues['empty_classes'] = (
        [(c, 'no image in any split') for c, n in totals.items() if n == 0] +
        [(f, 'empty class folder (skipped)') for f in empty_folders])
    if imbalance > rules.max_imbalance:
        most = max(totals, key=totals.get)
        least = min((c for c in totals if totals[c]), key=totals.get)
        issues['imbalance'].append(
            ('classes', f'{most} has {totals[most]} images, {least} '
             f'{totals[least]}: ratio {imbalance:.2f} > '
             f'{rules.max_imbalance:g}'))
    issues = {k: v for k, v in issues.items() if v}
    return Report(
        source=', '.join(name for _, name in loaded),
        classes=classes,
        counts=counts,
        imbalance=float(imbalance),
        issues=issues,
        rules=rules,
        failed_rules=[c for c in CHECKS if c in rules.fail_on and c in issues])
