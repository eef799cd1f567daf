"""Detection dataset health checks (COCO JSON or YOLO txt labels).

The annotations are checked with the same functions the datasets use
(:func:`coco_annotation_problem`, :func:`parse_yolo_line`), so a dataset
that validates here loads in training; unlike the datasets, every problem is
collected instead of raising at the first one. Image checks (unreadable,
duplicates, too small / dark / bright / flat) are those of
:mod:`.validation`.
"""
import glob
import os.path as osp
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import (Any, ClassVar, Dict, List, Optional, Sequence, Tuple,
                    Union)

from .coco_detection import (coco_annotation_problem, coco_categories,
                             load_coco_json)
from .file_listing import list_files
from .transforms.det_transforms import segmentation_to_rle
from .validation import (Report, ValidationRules, _duplicates, _image_issues,
                         _inspect)
from .yolo_detection import (YOLO_IMG_SUFFIXES, parse_yolo_line,
                             read_yolo_classes, yolo_label_path)

DET_CHECKS = ('missing_images', 'unreadable', 'size_mismatch',
              'duplicate_image_ids', 'orphan_annotations', 'box_outside',
              'degenerate_boxes', 'unknown_categories', 'bad_polygons',
              'bad_rle', 'bad_lines', 'mask_box_mismatch',
              'duplicate_annotations', 'no_annotations', 'empty_classes',
              'imbalance', 'duplicates', 'duplicates_within', 'too_small',
              'too_dark', 'too_bright', 'flat')
DET_DEFAULT_FAIL_ON = ('missing_images', 'unreadable', 'size_mismatch',
                       'duplicate_image_ids', 'orphan_annotations',
                       'box_outside', 'degenerate_boxes',
                       'unknown_categories', 'bad_polygons', 'bad_rle',
                       'bad_lines', 'mask_box_mismatch', 'duplicates')
#: Problem kinds of the loaders -> the check that lists them.
_KIND_TO_CHECK = dict(missing_image='missing_images',
                      unknown_image='orphan_annotations',
                      box_outside='box_outside', outside='box_outside',
                      degenerate_box='degenerate_boxes',
                      unknown_category='unknown_categories',
                      bad_class='unknown_categories',
                      bad_polygon='bad_polygons', bad_rle='bad_rle',
                      bad_fields='bad_lines', no_mask='bad_polygons')
_SPLITS = ('train', 'val', 'test')


@dataclass
class DetValidationRules(ValidationRules):
    """:class:`ValidationRules` for detection datasets.

    Adds ``min_mask_box_iou`` (a mask whose tight box overlaps its
    annotation box less than this is ``mask_box_mismatch``; default 0.5);
    ``max_imbalance`` bounds the ratio of instances of the most to the least
    frequent class (default 20); ``fail_on`` names checks from
    :data:`DET_CHECKS` (default :data:`DET_DEFAULT_FAIL_ON`).
    """
    max_imbalance: float = 20.0
    min_mask_box_iou: float = 0.5
    fail_on: Sequence[str] = DET_DEFAULT_FAIL_ON
    known_checks: ClassVar[Tuple[str, ...]] = DET_CHECKS


@dataclass
class DetReport(Report):
    """Result of :func:`validate_det_dataset`.

    Attributes (besides :class:`Report`'s, where ``counts`` holds
    instances):
        format (str): ``'coco'`` or ``'yolo'``.
        image_counts (dict): ``{split: {class: images containing it}}``.
        split_stats (dict): ``{split: {images, annotations, negatives,
            crowd}}``.
    """
    format: str = 'coco'
    image_counts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    split_stats: Dict[str, Dict[str, int]] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        """Number of images over every split."""
        return sum(s['images'] for s in self.split_stats.values())

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable view."""
        out = super().to_dict()
        out['kind'] = 'detection'
        return out

    def render(self) -> str:
        """A readable multi-line report."""
        stats = self.split_stats
        per = ', '.join(
            f'{s} {v["images"]} ({v["negatives"]} without objects)'
            for s, v in stats.items())
        anns = sum(v['annotations'] for v in stats.values())
        crowd = sum(v['crowd'] for v in stats.values())
        lines = [f'Dataset: {self.source} (detection, {self.format})',
                 f'Classes: {len(self.classes)}   Images: {self.num_images} '
                 f'({per})   Objects: {anns} ({crowd} crowd)', '']
        splits = list(self.counts)
        width = max([len('class')] + [len(c) for c in self.classes])
        head = [f'{s} obj' for s in splits] + ['total'] + \
            [f'{s} img' for s in splits]
        cols = [max(7, len(h)) for h in head]
        lines.append('  '.join([f'{"class":<{width}}'] +
                               [f'{h:>{n}}' for h, n in zip(head, cols)]))
        for name in self.classes:
            objs = [self.counts[s].get(name, 0) for s in splits]
            imgs = [self.image_counts[s].get(name, 0) for s in splits]
            row = objs + [sum(objs)] + imgs
            lines.append('  '.join([f'{name:<{width}}'] +
                                   [f'{v:>{n}}' for v, n in zip(row, cols)]))
        lines += ['', f'Imbalance (max/min class instances): '
                  f'{self.imbalance:.2f} (limit {self.rules.max_imbalance:g})']
        return '\n'.join(lines + self._render_checks(DET_CHECKS))


@dataclass
class _Split:
    """What one split's annotations hold, in a format-free form."""
    name: str
    images: List[dict] = field(default_factory=list)  # path, declared hw
    objects: List[dict] = field(default_factory=list)
    issues: List[Tuple[str, str, str]] = field(default_factory=list)


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) -
             inter)
    return inter / union if union > 0 else 0.0


def _guess_img_dir(ann_file: str, split: str, files: List[str]) -> str:
    ann_dir = osp.dirname(osp.abspath(ann_file))
    root = osp.dirname(ann_dir)
    candidates = [osp.join(root, split), osp.join(root, 'images', split),
                  osp.join(root, f'{split}2017'), root, ann_dir]
    for folder in candidates:
        if files and osp.isfile(osp.join(folder, files[0])):
            return folder
    return candidates[0] if osp.isdir(candidates[0]) else ann_dir


def _split_of(ann_file: str) -> str:
    stem = osp.splitext(osp.basename(ann_file))[0]
    for split in _SPLITS:
        if stem.endswith(split) or f'{split}20' in stem:
            return split
    return stem


def _coco_split(ann_file: str, img_dir: Optional[str],
                names_ids: list) -> _Split:
    data = load_coco_json(ann_file)
    names, cat_ids = coco_categories(data, ann_file)
    names_ids.append((names, cat_ids, ann_file))
    label_of = {cid: i for i, cid in enumerate(cat_ids)}
    split = _Split(_split_of(ann_file))
    files = [str(i.get('file_name', '')) for i in data['images']]
    folder = img_dir or _guess_img_dir(ann_file, split.name, files)
    by_id: Dict[Any, dict] = {}
    seen_files: Dict[str, Any] = {}
    for img in data['images']:
        img_id, name = img.get('id'), str(img.get('file_name', ''))
        where = f'{ann_file} image id {img_id} ({name})'
        if img_id in by_id:
            split.issues.append(('duplicate_image_ids', where, (
                f'id also used by {by_id[img_id]["file_name"]}; give every '
                'image a unique id')))
            continue
        if name in seen_files:
            split.issues.append(('duplicate_image_ids', where, (
                f'file listed twice (also image id {seen_files[name]}); '
                'keep one entry')))
        seen_files[name] = img_id
        path = osp.join(folder, name)
        info = dict(path=path, file_name=name, img_id=img_id,
                    hw=(img.get('height'), img.get('width')), objects=0)
        by_id[img_id] = info
        if not osp.isfile(path):
            split.issues.append(('missing_images', where, (
                f'file {path} does not exist; add it or remove the image '
                'and its annotations (or pass --img-dir)')))
            info['missing'] = True
        else:
            split.images.append(info)
    ann_ids: Counter = Counter(a.get('id') for a in data['annotations'])
    keys: Dict[tuple, Any] = {}
    for ann in data['annotations']:
        ann_id = ann.get('id')
        img = by_id.get(ann.get('image_id'))
        where = f'{ann_file} annotation id {ann_id}'
        if ann_ids[ann_id] > 1:
            split.issues.append(('duplicate_annotations', where, (
                f'annotation id used {ann_ids[ann_id]} times; make ids '
                'unique')))
        if img is None:
            split.issues.append(('orphan_annotations', where, (
                f'image_id {ann.get("image_id")!r} is not in "images"; fix '
                'the id or remove the annotation')))
            continue
        where += f' (image id {img["img_id"]}, {img["file_name"]})'
        h, w = img['hw']
        has_seg = bool(ann.get('segmentation'))
        problem = coco_annotation_problem(ann, int(w or 0), int(h or 0),
                                          label_of, has_seg)
        if problem:
            split.issues.append((_KIND_TO_CHECK[problem[0]], where,
                                 f'{problem[1]}; fix or remove it'))
            continue
        x, y, bw, bh = (float(v) for v in ann['bbox'])
        key = (img['img_id'], ann['category_id'],
               tuple(round(v, 1) for v in (x, y, bw, bh)))
        if key in keys:
            split.issues.append(('duplicate_annotations', where, (
                f'same category and box as annotation id {keys[key]}; '
                'remove one')))
        keys[key] = ann_id
        img['objects'] += 1
        split.objects.append(dict(
            where=where, image=img['path'], label=label_of[ann['category_id']],
            box=[x, y, x + bw, y + bh], crowd=bool(ann.get('iscrowd')),
            seg=ann.get('segmentation') if has_seg else None, hw=(h, w)))
    for img in by_id.values():
        if not img['objects'] and not img.get('missing'):
            split.issues.append(('no_annotations', img['path'], (
                'no object: a negative example; fine if intended')))
    return split


def _yolo_layout(root: str, classes: Any) -> Tuple[tuple, List[tuple]]:
    """``(names, [(split, img_dir, label_dir), ...])`` of a YOLO root."""
    yaml_file = next((osp.join(root, f) for f in ('data.yaml', 'data.yml')
                      if osp.isfile(osp.join(root, f))), None)
    if classes is None and yaml_file is None:
        raise ValueError(f'validate_det_dataset: {root} is a YOLO layout '
                         'without data.yaml; give the class names '
                         '(--classes).')
    names = read_yolo_classes(classes if classes is not None else yaml_file)
    img_root = osp.join(root, 'images')
    label_root = osp.join(root, 'labels')
    subs = [s for s in _SPLITS if osp.isdir(osp.join(img_root, s))]
    if not subs:
        return names, [('all', img_root, label_root)]
    return names, [(s, osp.join(img_root, s), osp.join(label_root, s))
                   for s in subs]


def _yolo_split(name: str, img_dir: str, label_dir: str,
                num_classes: int) -> _Split:
    from ..utils.image_ops import image_header_size
    split = _Split(name)
    paths, _ = list_files(img_dir, YOLO_IMG_SUFFIXES,
                          owner='validate_det_dataset',
                          reserved=[img_dir, label_dir])
    used = set()
    for path in sorted(paths):
        label_path = yolo_label_path(path, img_dir, label_dir)
        used.add(osp.abspath(label_path))
        try:
            w, h = image_header_size(path)
        except ValueError:
            w = h = None
        info = dict(path=path, hw=(h, w), objects=0)
        split.images.append(info)
        lines = []
        if osp.isfile(label_path) and w:
            with open(label_path, encoding='utf-8') as f:
                lines = f.read().splitlines()
        keys: Dict[str, int] = {}
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f'{label_path}, line {lineno}'
            inst, problem = parse_yolo_line(line, num_classes, w, h)
            if problem:
                split.issues.append((_KIND_TO_CHECK[problem[0]], where,
                                     f'{problem[1]}; fix or remove the line'))
                continue
            norm = ' '.join(line.split())
            if norm in keys:
                split.issues.append(('duplicate_annotations', where, (
                    f'same as line {keys[norm]}; remove one')))
            keys[norm] = lineno
            info['objects'] += 1
            split.objects.append(dict(where=where, image=path,
                                      label=inst['bbox_label'],
                                      box=inst['bbox'], crowd=False,
                                      seg=inst['mask'], hw=(h, w)))
        if not info['objects'] and w:
            split.issues.append(('no_annotations', path, (
                'no object: a negative example; fine if intended')))
    if osp.isdir(label_dir):
        labels, _ = list_files(label_dir, ('.txt', ),
                               owner='validate_det_dataset',
                               reserved=[img_dir, label_dir])
        for label_path in sorted(labels):
            if osp.abspath(label_path) not in used:
                split.issues.append(('orphan_annotations', label_path, (
                    f'no image for this label file in {img_dir}; add the '
                    'image or remove the file')))
    return split


def _detect_format(source: str) -> str:
    if osp.isfile(source):
        return 'coco'
    if glob.glob(osp.join(source, 'annotations', '*.json')):
        return 'coco'
    if (osp.isdir(osp.join(source, 'images')) or
            osp.isfile(osp.join(source, 'data.yaml'))):
        return 'yolo'
    raise ValueError(f'validate_det_dataset: {source} is neither a COCO '
                     'JSON, a folder with annotations/*.json, nor a YOLO '
                     'root (images/ + labels/ or data.yaml).')


def is_detection_source(source: str) -> bool:
    """True for a COCO JSON (``images`` + ``annotations``), a folder with
    ``annotations/*.json`` or a YOLO root (``images/`` and ``labels/``)."""
    if osp.isfile(source) and source.endswith('.json'):
        import json
        try:
            with open(source, encoding='utf-8') as f:
                data = json.load(f)
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and 'images' in data and \
            'annotations' in data
    if not osp.isdir(source):
        return False
    return bool(glob.glob(osp.join(source, 'annotations', '*.json'))) or (
        osp.isdir(osp.join(source, 'images')) and
        osp.isdir(osp.join(source, 'labels')))


def _mask_box_issue(obj: dict, min_iou: float) -> Optional[str]:
    from pycocotools import mask as mask_utils
    h, w = obj['hw']
    rle = segmentation_to_rle(obj['seg'], int(h), int(w))
    rle['counts'] = rle['counts'].encode('ascii')
    x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
    iou = _box_iou([x, y, x + bw, y + bh], obj['box'])
    if iou >= min_iou:
        return None
    return (f'mask box [{x:g}, {y:g}, {x + bw:g}, {y + bh:g}] overlaps the '
            f'annotation box {[round(v, 1) for v in obj["box"]]} with IoU '
            f'{iou:.2f} < {min_iou:g}; re-export the box from the mask or '
            'fix the mask')


def validate_det_dataset(source: Union[str, Sequence[str]],
                         fmt: str = 'auto',
                         classes: Any = None,
                         img_dir: Optional[str] = None,
                         rules: Optional[DetValidationRules] = None,
                         **rule_overrides: Any) -> DetReport:
    """Check a detection dataset and report what is wrong with it.

    Checks (see :data:`DET_CHECKS`): image files missing, unreadable or of
    another size than declared, repeated image ids, annotations of unknown
    images, boxes outside the image or degenerate, unknown category ids,
    polygons with fewer than 3 points, RLE of the wrong size, YOLO lines
    with the wrong number of fields or coordinates outside 0-1, masks whose
    tight box does not match the annotation box, repeated annotations,
    images without objects (a warning: negatives are valid), classes without
    objects, the class imbalance and the image checks of
    :func:`validate_dataset`.

    Args:
        source (str | sequence[str]): A COCO JSON file, a folder holding
            ``annotations/*.json`` (one split per file, images in
            ``<root>/<split>/`` or ``<root>/images/<split>/``), a YOLO root
            (``images/[split/]`` and ``labels/[split/]``, classes from
            ``data.yaml`` or ``classes``), or several COCO JSON files.
        fmt (str): ``'auto'``, ``'coco'`` or ``'yolo'``.
        classes (sequence[str] | str, optional): YOLO class names (or a text
            file / data.yaml).
        img_dir (str, optional): Image folder of a single COCO JSON
            (guessed when None).
        rules (DetValidationRules, optional): Thresholds and failing checks.
        **rule_overrides: Fields of :class:`DetValidationRules`.

    Returns:
        DetReport: Instances and images per class and split, issues per
        check and the failed rules.

    Raises:
        FileNotFoundError: The source does not exist.
        ValueError: The files cannot be read at all (not JSON, no
            categories), or the splits have different categories.
    """
    rules = rules or DetValidationRules()
    if rule_overrides:
        rules = DetValidationRules(**{**asdict(rules), **rule_overrides})
    sources = [source] if isinstance(source, str) else list(source)
    for src in sources:
        if not osp.exists(src):
            raise FileNotFoundError(f'validate_det_dataset: {src} does not '
                                    'exist.')
    if fmt == 'auto':
        fmt = _detect_format(sources[0])
    if fmt not in ('coco', 'yolo'):
        raise ValueError(f"fmt={fmt!r}; expected 'auto', 'coco' or 'yolo'.")
    names_ids: list = []
    if fmt == 'coco':
        files = []
        for src in sources:
            files += (sorted(glob.glob(osp.join(src, 'annotations', '*.json')))
                      if osp.isdir(src) else [src])
        splits = [_coco_split(f, img_dir if len(files) == 1 else None,
                              names_ids) for f in files]
        splits.sort(key=lambda s: (_SPLITS.index(s.name)
                                   if s.name in _SPLITS else 3, s.name))
        names = names_ids[0][0]
        for other, _, path in names_ids[1:]:
            if other != names:
                raise ValueError(
                    f'validate_det_dataset: {path} has categories {other}, '
                    f'{names_ids[0][2]} has {names}; validate them '
                    'separately.')
    else:
        names, layout = _yolo_layout(sources[0], classes)
        splits = [_yolo_split(s, i, lab, len(names)) for s, i, lab in layout]

    issues: Dict[str, List[Tuple[str, str]]] = {c: [] for c in DET_CHECKS}
    for split in splits:
        for check, where, detail in split.issues:
            issues[check].append((where, detail))
    samples = [(img['path'], [None], split.name) for split in splits
               for img in split.images]
    with ThreadPoolExecutor(max(1, rules.workers)) as pool:
        stats = list(pool.map(_inspect, [s[0] for s in samples]))
    image_issues = _image_issues(samples, stats, rules)
    for check in ('unreadable', 'too_small', 'too_dark', 'too_bright',
                  'flat'):
        issues[check] += image_issues[check]
    issues['duplicates'], issues['duplicates_within'] = _duplicates(
        samples, stats)
    declared = {img['path']: img['hw'] for split in splits
                for img in split.images}
    for (path, _, _), info in zip(samples, stats):
        hw = declared.get(path)
        if 'shape' in info and hw and hw[0] and tuple(info['shape']) != (
                int(hw[0]), int(hw[1])):
            issues['size_mismatch'].append((path, (
                f'file is {info["shape"][0]}x{info["shape"][1]} (HxW) but '
                f'the annotations say {hw[0]}x{hw[1]}; fix height/width')))

    counts = {s.name: {c: 0 for c in names} for s in splits}
    image_counts = {s.name: {c: 0 for c in names} for s in splits}
    split_stats = {}
    for split in splits:
        per_image: Dict[str, set] = {}
        for obj in split.objects:
            counts[split.name][names[obj['label']]] += 1
            per_image.setdefault(obj['image'], set()).add(obj['label'])
            if obj['seg'] is not None and not obj['crowd']:
                detail = _mask_box_issue(obj, rules.min_mask_box_iou)
                if detail:
                    issues['mask_box_mismatch'].append((obj['where'], detail))
        for labels in per_image.values():
            for label in labels:
                image_counts[split.name][names[label]] += 1
        split_stats[split.name] = dict(
            images=len(split.images), annotations=len(split.objects),
            negatives=sum(1 for i in split.images if not i['objects']),
            crowd=sum(1 for o in split.objects if o['crowd']))
    totals = {c: sum(s[c] for s in counts.values()) for c in names}
    issues['empty_classes'] = [
        (c, f'no object in any split (label {i}); check the category list')
        for i, (c, n) in enumerate(totals.items()) if n == 0]
    nonzero = [n for n in totals.values() if n > 0]
    imbalance = max(nonzero) / min(nonzero) if nonzero else 0.0
    if imbalance > rules.max_imbalance:
        most = max(totals, key=totals.get)
        least = min((c for c in totals if totals[c]), key=totals.get)
        issues['imbalance'].append(('classes', (
            f'{most} has {totals[most]} objects, {least} {totals[least]}: '
            f'ratio {imbalance:.2f} > {rules.max_imbalance:g}')))
    issues = {k: v for k, v in issues.items() if v}
    return DetReport(
        source=', '.join(sources), classes=tuple(names), counts=counts,
        imbalance=float(imbalance), issues=issues, rules=rules,
        failed_rules=[c for c in DET_CHECKS
                      if c in rules.fail_on and c in issues],
        format=fmt, image_counts=image_counts, split_stats=split_stats)
