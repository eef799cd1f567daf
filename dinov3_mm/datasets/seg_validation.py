"""Segmentation dataset health checks: pairing, mask values, class pixels.

Reuses the report, rules and per-image checks of :mod:`.validation` and the
mask decoding of :class:`LoadSegAnnotation`, so a dataset that validates
here loads in training.
"""
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import (Any, ClassVar, Dict, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from .base import read_classes
from .seg_folder import _list_files, default_palette
from .transforms.seg_loading import (MASK_FORMATS, UnknownColourError,
                                     read_seg_map, reduce_zero_label_map)
from .validation import (Report, ValidationRules, _duplicates,
                         _image_issues, _inspect)

SEG_CHECKS = ('unreadable', 'missing_masks', 'orphan_masks', 'size_mismatch',
              'out_of_range', 'empty_classes', 'ignore_only',
              'background_only', 'imbalance', 'duplicates',
              'duplicates_within', 'too_small', 'too_dark', 'too_bright',
              'flat')
SEG_DEFAULT_FAIL_ON = ('unreadable', 'missing_masks', 'orphan_masks',
                       'size_mismatch', 'out_of_range', 'empty_classes',
                       'duplicates')
_SPLIT_ORDER = ('train', 'val', 'test')
OWNER = 'validate_seg_dataset'

SegSource = Union[str, Tuple[str, str], Dict[str, Tuple[str, str]]]


@dataclass
class SegValidationRules(ValidationRules):
    """:class:`ValidationRules` for segmentation datasets.

    The same thresholds (the image checks ``too_small``, ``too_dark``,
    ``too_bright`` and ``flat`` apply to the images), but ``max_imbalance``
    bounds the ratio of the most to the least frequent class in *pixels*
    (background usually dominates, hence the default 100), and ``fail_on``
    names checks from :data:`SEG_CHECKS` (default
    :data:`SEG_DEFAULT_FAIL_ON`).
    """
    max_imbalance: float = 100.0
    fail_on: Sequence[str] = SEG_DEFAULT_FAIL_ON
    known_checks: ClassVar[Tuple[str, ...]] = SEG_CHECKS


@dataclass
class SegReport(Report):
    """Result of :func:`validate_seg_dataset`.

    Attributes (besides :class:`Report`'s, where ``counts`` holds pixels):
        counts (dict): ``{split: {class: pixels}}`` over the readable masks
            of paired images.
        imbalance (float): Max / min of the non-zero total class pixels.
        image_counts (dict): ``{split: {class: images containing it}}``.
        split_stats (dict): ``{split: {images, masks, pairs, pixels,
            ignored}}`` (``pixels`` of the readable paired masks,
            ``ignored`` of them equal to the ignore index).
        frequencies (dict): ``{class: share of the labelled pixels}`` over
            every split.
        ignore_index (int): The ignore value.
        reduce_zero_label (bool): Whether 0 was mapped to ignore first.
    """
    image_counts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    split_stats: Dict[str, Dict[str, int]] = field(default_factory=dict)
    frequencies: Dict[str, float] = field(default_factory=dict)
    ignore_index: int = 255
    reduce_zero_label: bool = False

    @property
    def num_images(self) -> int:
        """Number of images over every split."""
        return sum(s['images'] for s in self.split_stats.values())

    @property
    def num_masks(self) -> int:
        """Number of mask files over every split."""
        return sum(s['masks'] for s in self.split_stats.values())

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable view."""
        out = super().to_dict()
        out['kind'] = 'segmentation'
        out['num_masks'] = self.num_masks
        return out

    def _table(self) -> List[str]:
        splits = list(self.counts)
        width = max([len('class')] + [len(c) for c in self.classes])
        head = ([f'{s} px' for s in splits] + ['total px', 'freq %'] +
                [f'{s} img' for s in splits])
        cols = [max(9, len(h)) for h in head]
        lines = ['  '.join([f'{"class":<{width}}'] +
                           [f'{h:>{n}}' for h, n in zip(head, cols)])]
        for name in self.classes:
            pixels = [self.counts[s].get(name, 0) for s in splits]
            images = [self.image_counts[s].get(name, 0) for s in splits]
            row = ([str(p) for p in pixels] + [str(sum(pixels))] +
                   [f'{100 * self.frequencies.get(name, 0.0):.2f}'] +
                   [str(i) for i in images])
            lines.append('  '.join([f'{name:<{width}}'] +
                                   [f'{v:>{n}}' for v, n in zip(row, cols)]))
        return lines

    def render(self) -> str:
        """A readable multi-line report."""
        stats = self.split_stats
        images = ', '.join(f'{s} {v["images"]}' for s, v in stats.items())
        masks = ', '.join(f'{s} {v["masks"]}' for s, v in stats.items())
        pixels = sum(v['pixels'] for v in stats.values())
        ignored = sum(v['ignored'] for v in stats.values())
        share = 100 * ignored / pixels if pixels else 0.0
        lines = [f'Dataset: {self.source} (segmentation)',
                 f'Classes: {len(self.classes)}   Images: {self.num_images} '
                 f'({images})   Masks: {self.num_masks} ({masks})',
                 f'Ignore index: {self.ignore_index}   reduce_zero_label: '
                 f'{self.reduce_zero_label}   Ignored pixels: {ignored} of '
                 f'{pixels} ({share:.2f}%)', '']
        lines += self._table() + ['']
        lines.append(f'Pixel imbalance (max/min class pixels): '
                     f'{self.imbalance:.2f} '
                     f'(limit {self.rules.max_imbalance:g})')
        return '\n'.join(lines + self._render_checks(SEG_CHECKS))


def _split_key(name: str) -> tuple:
    order = _SPLIT_ORDER.index(name) if name in _SPLIT_ORDER else 3
    return order, name


def _subdirs(folder: str) -> List[str]:
    if not osp.isdir(folder):
        return []
    return [d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d))]


def _layout(source: SegSource, img_dir: str,
            ann_dir: str) -> Tuple[str, List[Tuple[str, str, str]]]:
    """``(name, [(split, image folder, mask folder), ...])``."""
    if isinstance(source, dict):
        return ', '.join(str(v[0]) for v in source.values()), [
            (str(s), str(v[0]), str(v[1])) for s, v in source.items()]
    if isinstance(source, (tuple, list)):
        if len(source) != 2:
            raise ValueError('validate_seg_dataset: give a data root, an '
                             '(img_dir, ann_dir) pair or {split: (img_dir, '
                             f'ann_dir)}}, not {source!r}.')
        img, ann = str(source[0]), str(source[1])
        if not osp.isdir(img):
            raise FileNotFoundError(
                f'validate_seg_dataset: image folder {img} does not exist.')
        return img, [('all', img, ann)]
    root = str(source)
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'validate_seg_dataset: {root} is not a folder; give the data '
            f'root holding {img_dir}/ and {ann_dir}/.')
    img_root, ann_root = osp.join(root, img_dir), osp.join(root, ann_dir)
    for folder in (img_root, ann_root):
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'validate_seg_dataset: {folder} does not exist; a '
                f'segmentation root holds {img_dir}/<split>/ images and '
                f'{ann_dir}/<split>/ masks (mmseg layout).')
    splits = sorted(set(_subdirs(img_root)) | set(_subdirs(ann_root)),
                    key=_split_key)
    if not splits:
        return root, [('all', img_root, ann_root)]
    return root, [(s, osp.join(img_root, s), osp.join(ann_root, s))
                  for s in splits]


def _class_names(classes: Any, num_classes: Optional[int]) -> tuple:
    names = read_classes(classes)
    if names is None and num_classes is None:
        raise ValueError('validate_seg_dataset: give the class names '
                         '(--classes) or their number (--num-classes).')
    if names is None:
        if num_classes < 1:
            raise ValueError(f'num_classes={num_classes} must be >= 1.')
        names = tuple(f'class_{i}' for i in range(num_classes))
    if num_classes is not None and num_classes != len(names):
        raise ValueError(f'validate_seg_dataset: {len(names)} class names '
                         f'but num_classes={num_classes}.')
    return names


def _inspect_mask(path: str, mask_format: str, palette,
                  reduce_zero_label: bool) -> Dict[str, Any]:
    """Shape and value histogram of one mask, or why it cannot be used."""
    try:
        seg = read_seg_map(path, mask_format, palette)
    except UnknownColourError as exc:
        return dict(error=str(exc), colour=True)
    except ValueError as exc:
        return dict(error=str(exc))
    seg = np.asarray(seg)
    if seg.ndim != 2:
        return dict(error=f'Mask {path} decodes to shape {seg.shape}, not '
                    '(H, W)')
    if reduce_zero_label:
        seg = reduce_zero_label_map(seg)
    if seg.size and seg.min() >= 0 and seg.max() < 2**16:
        hist = np.bincount(seg.reshape(-1).astype(np.int64))
        values = np.nonzero(hist)[0]
        counts = hist[values]
    else:
        values, counts = np.unique(seg, return_counts=True)
    return dict(shape=seg.shape, values=values.astype(np.int64),
                counts=counts.astype(np.int64))


def validate_seg_dataset(source: SegSource,
                         classes: Any = None,
                         num_classes: Optional[int] = None,
                         img_suffix: str = '.png',
                         seg_map_suffix: str = '.png',
                         ignore_index: int = 255,
                         reduce_zero_label: bool = False,
                         mask_format: str = 'auto',
                         palette: Optional[Sequence[Sequence[int]]] = None,
                         background_index: Optional[int] = 0,
                         img_dir: str = 'img_dir',
                         ann_dir: str = 'ann_dir',
                         rules: Optional[SegValidationRules] = None,
                         **rule_overrides: Any) -> SegReport:
    """Check a segmentation dataset and report what is wrong with it.

    Images and masks are paired by relative path without suffix, as
    :class:`SegFolderDataset` does, and the masks are decoded as
    :class:`LoadSegAnnotation` does (P-mode PNGs give palette indices, RGB
    masks are mapped through ``palette``), then ``reduce_zero_label``.

    Checks (see :data:`SEG_CHECKS`): unreadable images or masks, images
    without a mask (``missing_masks``), masks without an image
    (``orphan_masks``), masks of another size than their image, values
    outside ``[0, num_classes)`` that are not ``ignore_index`` (or RGB
    colours not in the palette), classes with no pixel, masks that are all
    ignore or all background, the pixel imbalance between classes, and the
    image checks of :func:`validate_dataset` (duplicates, too small, too
    dark, too bright, flat).

    Args:
        source (str | tuple | dict): A data root with ``img_dir/`` and
            ``ann_dir/`` (one split per sub-folder, e.g. ``train``, ``val``;
            or a single split ``all`` when they have no sub-folder), an
            ``(img_dir, ann_dir)`` pair, or ``{split: (img_dir, ann_dir)}``.
        classes (sequence[str] | str, optional): Class names (index 0
            first), or a text file with one per line.
        num_classes (int, optional): Number of classes, when no names.
        img_suffix (str): Defaults to ``'.png'``.
        seg_map_suffix (str): Defaults to ``'.png'``.
        ignore_index (int): Defaults to 255.
        reduce_zero_label (bool): 0 means unlabelled (mapped to ignore, the
            rest shifted down). Defaults to False.
        mask_format (str): ``'auto'``, ``'index'`` or ``'rgb'``, as
            :class:`LoadSegAnnotation`.
        palette (sequence[sequence[int]], optional): RGB colour per class for
            RGB-encoded masks. Defaults to :func:`default_palette`, as
            :class:`SegFolderDataset`.
        background_index (int, optional): Class of ``background_only``
            masks; None skips that check. Defaults to 0.
        img_dir (str): Image folder name under a data root.
        ann_dir (str): Mask folder name under a data root.
        rules (SegValidationRules, optional): Thresholds and failing checks.
        **rule_overrides: Fields of :class:`SegValidationRules` to override.

    Returns:
        SegReport: Pixel and image counts per class and split, issues per
        check and the failed rules.

    Raises:
        FileNotFoundError: the layout cannot be read (no such folder).
        ValueError: no class list, no image or mask at all, or bad args.
    """
    rules = rules or SegValidationRules()
    if rule_overrides:
        rules = SegValidationRules(**{**asdict(rules), **rule_overrides})
    if mask_format not in MASK_FORMATS:
        raise ValueError(f'mask_format={mask_format!r}; expected one of '
                         f'{MASK_FORMATS}.')
    names = _class_names(classes, num_classes)
    nc = len(names)
    if palette is None:
        palette = default_palette(nc)
    name, layout = _layout(source, img_dir, ann_dir)

    issues: Dict[str, List[Tuple[str, str]]] = {c: [] for c in SEG_CHECKS}
    pairs, image_samples, split_stats = [], [], {}
    for split, split_img, split_ann in layout:
        reserved = (split_img, split_ann)
        images = (_list_files(split_img, img_suffix, OWNER, reserved)
                  if osp.isdir(split_img) else {})
        masks = (_list_files(split_ann, seg_map_suffix, OWNER, reserved)
                 if osp.isdir(split_ann) else {})
        split_stats[split] = dict(images=len(images), masks=len(masks),
                                  pairs=0, pixels=0, ignored=0)
        for stem in sorted(images):
            image_samples.append((images[stem], [None], split))
            if stem in masks:
                pairs.append((split, images[stem], masks[stem]))
                split_stats[split]['pairs'] += 1
            else:
                expected = osp.join(split_ann, stem + seg_map_suffix)
                issues['missing_masks'].append((images[stem], (
                    f'no mask {expected}; add it, or keep the image '
                    'unlabelled with SegFolderDataset(allow_missing_masks='
                    'True) (an all-ignore mask)')))
        for stem in sorted(set(masks) - set(images)):
            expected = osp.join(split_img, stem + img_suffix)
            issues['orphan_masks'].append((masks[stem], (
                f'no image {expected}; remove the mask, or check the image '
                f'suffix (img_suffix={img_suffix!r})')))
    if not image_samples and not any(s['masks']
                                     for s in split_stats.values()):
        folders = ', '.join(f'{i} / {a}' for _, i, a in layout)
        raise ValueError(
            f'validate_seg_dataset: no *{img_suffix} image and no '
            f'*{seg_map_suffix} mask in {folders}; check the folders and '
            'the suffixes.')

    with ThreadPoolExecutor(max(1, rules.workers)) as pool:
        img_stats = list(pool.map(_inspect, [s[0] for s in image_samples]))
        mask_stats = list(pool.map(
            lambda p: _inspect_mask(p, mask_format, palette,
                                    reduce_zero_label),
            [m for _, _, m in pairs]))

    image_issues = _image_issues(image_samples, img_stats, rules)
    for check in ('too_small', 'too_dark', 'too_bright', 'flat'):
        issues[check] = image_issues[check]
    issues['unreadable'] = [
        (path, f'{detail}; re-export the image or remove it and its mask')
        for path, detail in image_issues['unreadable']]
    issues['duplicates'], issues['duplicates_within'] = _duplicates(
        image_samples, img_stats)
    shapes = {path: info.get('shape')
              for (path, _, _), info in zip(image_samples, img_stats)}

    counts = {s: {c: 0 for c in names} for s in split_stats}
    image_counts = {s: {c: 0 for c in names} for s in split_stats}
    after = ' after reduce_zero_label' if reduce_zero_label else ''
    for (split, img_path, mask_path), info in zip(pairs, mask_stats):
        if 'error' in info:
            if info.get('colour'):
                issues['out_of_range'].append((mask_path, (
                    f'{info["error"].rstrip(".")} (palette= / --palette)')))
            else:
                issues['unreadable'].append((mask_path, (
                    f'{info["error"]}; re-export the mask (a single-channel '
                    'or palette PNG of class indices)')))
            continue
        mh, mw = info['shape']
        img_shape = shapes.get(img_path)
        if img_shape is not None and tuple(img_shape) != (mh, mw):
            issues['size_mismatch'].append((mask_path, (
                f'mask is {mh}x{mw} (HxW) but image {img_path} is '
                f'{img_shape[0]}x{img_shape[1]}; re-export the mask at the '
                'image size (nearest-neighbour if resized)')))
        values, pix = info['values'], info['counts']
        stats = split_stats[split]
        stats['pixels'] += int(pix.sum())
        ignored = int(pix[values == ignore_index].sum())
        stats['ignored'] += ignored
        inside = (values >= 0) & (values < nc) & (values != ignore_index)
        for v, n in zip(values[inside], pix[inside]):
            counts[split][names[v]] += int(n)
            image_counts[split][names[v]] += 1
        bad = inside | (values == ignore_index)
        if not bad.all():
            vals, n_bad = values[~bad].tolist(), int(pix[~bad].sum())
            hint = ''
            if not reduce_zero_label and max(vals) == nc:
                hint = (', or reduce_zero_label if the labels start at 1 '
                        'with 0 unlabelled')
            shown = vals[:20] + (['...'] if len(vals) > 20 else [])
            issues['out_of_range'].append((mask_path, (
                f'values {shown} ({n_bad} px) outside the {nc} classes '
                f'[0, {nc - 1}] and not the ignore index '
                f'{ignore_index}{after}; fix the mask or the class list '
                f'(classes / num_classes){hint}')))
        total = int(pix.sum())
        if total and ignored == total:
            issues['ignore_only'].append((mask_path, (
                f'all {total} pixels are the ignore index {ignore_index}'
                f'{after}: the image adds nothing to training; label it or '
                'remove it')))
        elif (background_index is not None and total and int(
                pix[values == background_index].sum()) == total - ignored):
            label = (f' {names[background_index]!r}'
                     if 0 <= background_index < nc else '')
            issues['background_only'].append((mask_path, (
                f'only background (class {background_index}{label}) '
                f'{"and ignore " if ignored else ""}pixels{after}; check '
                'the mask was exported with its labels')))

    totals = {c: sum(split[c] for split in counts.values()) for c in names}
    labelled = sum(totals.values())
    frequencies = {c: (n / labelled if labelled else 0.0)
                   for c, n in totals.items()}
    issues['empty_classes'] = [
        (c, f'no pixel in any mask; check the class list and the masks '
         f'(class index {i})') for i, (c, n) in enumerate(totals.items())
        if n == 0]
    nonzero = [n for n in totals.values() if n > 0]
    imbalance = max(nonzero) / min(nonzero) if nonzero else 0.0
    if imbalance > rules.max_imbalance:
        most = max(totals, key=totals.get)
        least = min((c for c in totals if totals[c]), key=totals.get)
        issues['imbalance'].append(
            ('classes', f'{most} has {totals[most]} pixels, {least} '
             f'{totals[least]}: ratio {imbalance:.2f} > '
             f'{rules.max_imbalance:g}; consider class weights or a '
             'Dice / focal loss'))
    issues = {k: v for k, v in issues.items() if v}
    return SegReport(
        source=name,
        classes=tuple(names),
        counts=counts,
        imbalance=float(imbalance),
        issues=issues,
        rules=rules,
        failed_rules=[c for c in SEG_CHECKS
                      if c in rules.fail_on and c in issues],
        image_counts=image_counts,
        split_stats=split_stats,
        frequencies=frequencies,
        ignore_index=ignore_index,
        reduce_zero_label=reduce_zero_label)
