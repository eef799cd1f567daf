"""COCO-format detection and instance segmentation dataset.

The annotation file is read with :mod:`json` (so a broken file is reported
with its line) and checked object by object with
:func:`coco_annotation_problem`, which :mod:`.det_validation` shares: a
dataset that validates there loads here.
"""
import json
import logging
import os.path as osp
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..registry import DATASETS, TRANSFORMS

#: Tolerance in pixels of a box edge beyond the image border; boxes within
#: it are clipped, boxes beyond it are errors.
BOX_TOLERANCE = 1.0

#: Kinds of bad annotation, as counted when ``skip_invalid=True``.
COCO_PROBLEMS = ('missing_image', 'unknown_image', 'box_outside',
                 'degenerate_box', 'unknown_category', 'bad_polygon',
                 'bad_rle', 'no_mask')


def load_coco_json(ann_file: str) -> dict:
    """Read a COCO annotation file and check its top-level structure.

    Args:
        ann_file (str): Path of the ``.json`` file.

    Returns:
        dict: The parsed file with ``images``, ``annotations`` (may be empty)
        and ``categories``.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Not JSON, or no ``images`` / ``categories`` list.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'COCO annotation file {ann_file} does not '
                                'exist; check ann_file and data_root.')
    try:
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{ann_file} is not valid JSON ({exc}); re-export '
                         'the COCO annotations.') from exc
    if not isinstance(data, dict):
        raise ValueError(f'{ann_file}: a COCO file is a JSON object with '
                         '"images", "annotations" and "categories".')
    for key in ('images', 'categories'):
        if not isinstance(data.get(key), list):
            raise ValueError(f'{ann_file}: no "{key}" list; a COCO file '
                             'holds "images", "annotations" and '
                             '"categories".')
    if not data['categories']:
        raise ValueError(f'{ann_file}: "categories" is empty; list the '
                         'classes as {"id": ..., "name": ...}.')
    data.setdefault('annotations', [])
    return data


def coco_categories(data: dict, ann_file: str) -> Tuple[tuple, tuple]:
    """Class names and COCO category ids in label order (sorted by id).

    Raises:
        ValueError: A category without id or name, or a repeated id or name.
    """
    cats = []
    for cat in data['categories']:
        if 'id' not in cat or 'name' not in cat:
            raise ValueError(f'{ann_file}: category {cat} has no "id" or '
                             '"name"; give both.')
        cats.append((int(cat['id']), str(cat['name'])))
    cats.sort()
    ids = [c[0] for c in cats]
    names = [c[1] for c in cats]
    for what, values in (('id', ids), ('name', names)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f'{ann_file}: category {what}(s) {repeated} '
                             'appear more than once; make them unique.')
    return tuple(names), tuple(ids)


def _bbox_problem(bbox: Any, width: int,
                  height: int) -> Optional[Tuple[str, str]]:
    if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or
            not all(isinstance(v, (int, float)) for v in bbox)):
        return 'degenerate_box', (f'bbox {bbox!r} is not [x, y, w, h] '
                                  'numbers')
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        return 'degenerate_box', (f'bbox [x, y, w, h]={list(bbox)} has zero '
                                  'or negative width/height')
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return 'box_outside', (
            f'bbox [x, y, w, h]={list(bbox)} (x2={x + w:g}, y2={y + h:g}) '
            f'leaves the {width}x{height} (WxH) image')
    return None


def _segmentation_problem(seg: Any, width: int,
                          height: int) -> Optional[Tuple[str, str]]:
    if isinstance(seg, list):
        if not seg:
            return 'bad_polygon', 'segmentation is an empty polygon list'
        for i, poly in enumerate(seg):
            if (not isinstance(poly, (list, tuple)) or len(poly) % 2 or
                    len(poly) < 6):
                n = len(poly) if isinstance(poly, (list, tuple)) else poly
                return 'bad_polygon', (
                    f'polygon {i} has {n} coordinates; a polygon needs at '
                    'least 3 points (6 numbers x1, y1, x2, y2, ...)')
        return None
    if isinstance(seg, dict):
        size, counts = seg.get('size'), seg.get('counts')
        if (not isinstance(size, (list, tuple)) or len(size) != 2 or
                counts is None):
            return 'bad_rle', (f'RLE {{size, counts}} malformed (size='
                               f'{size!r})')
        if [int(size[0]), int(size[1])] != [height, width]:
            return 'bad_rle', (f'RLE size [h, w]={list(size)} but the image '
                               f'is [{height}, {width}]')
        if isinstance(counts, list) and sum(counts) != height * width:
            return 'bad_rle', (f'uncompressed RLE counts sum to '
                               f'{sum(counts)}, not h*w={height * width}')
        if not isinstance(counts, (list, str, bytes)):
            return 'bad_rle', 'RLE counts are neither a list nor a string'
        return None
    return 'no_mask', f'segmentation {type(seg).__name__} is neither ' \
        'polygons nor RLE'


def coco_annotation_problem(ann: dict, width: int, height: int,
                            cat_ids: Sequence[int],
                            with_mask: bool) -> Optional[Tuple[str, str]]:
    """What is wrong with one COCO annotation, or None.

    Args:
        ann (dict): The annotation (``bbox`` ``[x, y, w, h]``,
            ``category_id``, optional ``segmentation`` and ``iscrowd``).
        width (int): Width of its image.
        height (int): Height of its image.
        cat_ids (sequence[int]): The category ids of the file.
        with_mask (bool): Check the segmentation too (and require one).

    Returns:
        tuple | None: ``(kind, detail)`` with ``kind`` from
        :data:`COCO_PROBLEMS`.
    """
    if ann.get('category_id') not in cat_ids:
        return 'unknown_category', (
            f'category_id {ann.get("category_id")!r} is not among the '
            f'categories {sorted(cat_ids)}')
    problem = _bbox_problem(ann.get('bbox'), width, height)
    if problem or not with_mask:
        return problem
    seg = ann.get('segmentation')
    if seg is None or (isinstance(seg, list) and not seg and
                       not ann.get('iscrowd')):
        return 'no_mask', ('no segmentation; give polygons or RLE, or load '
                           'boxes only (with_mask=False)')
    return _segmentation_problem(seg, width, height)


def _clipped_xyxy(bbox: Sequence[float], width: int,
                  height: int) -> List[float]:
    x, y, w, h = (float(v) for v in bbox)
    return [min(max(x, 0.0), width), min(max(y, 0.0), height),
            min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)]


def report_skipped(owner: str, source: str, counts: Counter,
                   examples: List[str]) -> None:
    """Log one warning summarising what ``skip_invalid`` dropped."""
    if not counts:
        return
    parts = ', '.join(f'{n} {kind}' for kind, n in sorted(counts.items()))
    shown = '; '.join(examples[:3])
    print_log(
        f'{owner}: skipped {sum(counts.values())} invalid item(s) of '
        f'{source} ({parts}); e.g. {shown}. Fix them or run '
        'tools/validate_dataset.py for the full list.',
        logger='current', level=logging.WARNING)


def build_det_pipeline(pipeline: Sequence) -> list:
    """Build pipeline dicts from the ``dinov3_mm`` registry."""
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in pipeline]


@DATASETS.register_module()
class CocoDetDataset(BaseDataset):
    """COCO JSON detection / instance segmentation dataset.

    Categories are sorted by id and mapped to contiguous labels ``0..C-1``;
    ``metainfo`` holds ``classes`` (their names), ``cat_ids`` (the COCO ids in
    label order, for exporting predictions) and ``palette``. Boxes
    ``[x, y, w, h]`` become ``[x1, y1, x2, y2]`` (edges within
    :data:`BOX_TOLERANCE` pixels outside the image are clipped);
    ``iscrowd=1`` objects get ``ignore_flag=1``. Segmentations (polygons,
    compressed or uncompressed RLE) are kept as given for
    :class:`LoadDetAnnotations` to decode.

    Data infos: ``img_path``, ``img_id``, ``height``, ``width``,
    ``instances`` (``bbox``, ``bbox_label``, ``ignore_flag``, ``mask``) and,
    in :meth:`get_data_info`, ``classes``.

    Args:
        ann_file (str): COCO JSON file (relative to ``data_root`` unless
            absolute).
        data_root (str): Root folder. Defaults to ``''``.
        data_prefix (dict): ``dict(img=...)`` image folder relative to
            ``data_root``. Defaults to ``dict(img='')``.
        pipeline (sequence): Transforms (dicts from the dinov3_mm registry).
        filter_empty (bool): Drop images without any non-crowd object while
            training (never in ``test_mode``). Defaults to False: images
            without objects are valid negatives.
        with_mask (bool): Check and keep the segmentations; an object
            without one is invalid. Defaults to False.
        skip_invalid (bool): Drop invalid annotations and images whose file
            is missing instead of raising; they are counted and logged in
            one warning and kept in :attr:`skipped`. Defaults to False.
        check_files (bool): Check that every image file exists. Defaults to
            True.
        palette (sequence, optional): RGB colour per class; generated when
            None.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments
            (``test_mode``, ``lazy_init``, ``indices``, ...).

    Raises:
        FileNotFoundError: The annotation file or an image is missing.
        ValueError: A bad annotation; the message names the file, the
            annotation id and its image, and what to do.
    """

    METAINFO: dict = dict(classes=None, cat_ids=None, palette=None)

    def __init__(self,
                 ann_file: str = '',
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence = (),
                 filter_empty: bool = False,
                 with_mask: bool = False,
                 skip_invalid: bool = False,
                 check_files: bool = True,
                 palette: Optional[Sequence[Sequence[int]]] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs: Any) -> None:
        if not ann_file:
            raise ValueError('CocoDetDataset: give ann_file (a COCO JSON).')
        self.filter_empty = filter_empty
        self.with_mask = with_mask
        self.skip_invalid = skip_invalid
        self.check_files = check_files
        self._palette = palette
        self.skipped: Counter = Counter()
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=dict(img='') if data_prefix is None else data_prefix,
            metainfo=metainfo,
            pipeline=build_det_pipeline(pipeline),
            **kwargs)

    def _fail(self, kind: str, message: str, examples: List[str]) -> None:
        if not self.skip_invalid:
            raise (FileNotFoundError if kind == 'missing_image' else
                   ValueError)(message)
        self.skipped[kind] += 1
        examples.append(message.split('; ')[0])

    def load_data_list(self) -> List[dict]:
        """Read the images and their objects from ``ann_file``."""
        from .seg_folder import default_palette
        ann_file = self.ann_file
        data = load_coco_json(ann_file)
        names, cat_ids = coco_categories(data, ann_file)
        label_of = {cid: i for i, cid in enumerate(cat_ids)}
        self._metainfo.update(classes=names, cat_ids=cat_ids)
        if self._metainfo.get('palette') is None:
            self._metainfo['palette'] = (
                [list(c) for c in self._palette] if self._palette else
                default_palette(len(names) + 1)[1:])
        self.skipped = Counter()
        examples: List[str] = []
        img_dir = self.data_prefix.get('img', '') or self.data_root

        images: Dict[int, dict] = {}
        for img in data['images']:
            if 'id' not in img or 'file_name' not in img:
                raise ValueError(f'{ann_file}: image entry {img} has no "id"'
                                 ' or "file_name".')
            if img['id'] in images:
                raise ValueError(
                    f'{ann_file}: image id {img["id"]} appears twice '
                    f'({images[img["id"]]["file_name"]} and '
                    f'{img["file_name"]}); give every image a unique id.')
            if 'height' not in img or 'width' not in img:
                raise ValueError(f'{ann_file}: image id {img["id"]} '
                                 f'({img["file_name"]}) has no height/width;'
                                 ' add them.')
            path = osp.join(img_dir, img['file_name'])
            if self.check_files and not osp.isfile(path):
                self._fail('missing_image', (
                    f'{ann_file}: image id {img["id"]}: file {path} does '
                    'not exist; check data_root / data_prefix, add the '
                    'image or set skip_invalid=True to drop it'), examples)
                continue
            images[img['id']] = dict(
                img_path=path, img_id=int(img['id']),
                height=int(img['height']), width=int(img['width']),
                instances=[])

        all_ids = {img.get('id') for img in data['images']}
        for ann in data['annotations']:
            ann_id = ann.get('id', '?')
            img = images.get(ann.get('image_id'))
            if img is None:
                if ann.get('image_id') in all_ids:
                    continue  # its image was skipped (missing file)
                self._fail('unknown_image', (
                    f'{ann_file}: annotation id {ann_id}: image_id '
                    f'{ann.get("image_id")!r} is not in "images"; fix the id'
                    ' or set skip_invalid=True to drop it'), examples)
                continue
            problem = coco_annotation_problem(ann, img['width'],
                                              img['height'], label_of,
                                              self.with_mask)
            if problem:
                kind, detail = problem
                self._fail(kind, (
                    f'{ann_file}: annotation id {ann_id} (image id '
                    f'{img["img_id"]}, {osp.basename(img["img_path"])}): '
                    f'{detail}; fix or remove the annotation, or set '
                    'skip_invalid=True to drop it'), examples)
                continue
            img['instances'].append(dict(
                bbox=_clipped_xyxy(ann['bbox'], img['width'],
                                   img['height']),
                bbox_label=label_of[ann['category_id']],
                ignore_flag=int(bool(ann.get('iscrowd', 0))),
                mask=ann.get('segmentation') if self.with_mask else None))

        report_skipped(type(self).__name__, ann_file, self.skipped, examples)
        data_list = list(images.values())
        if self.filter_empty and not self.test_mode:
            data_list = [d for d in data_list
                         if any(not i['ignore_flag'] for i in d['instances'])]
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """The data info of ``idx`` with the ``classes`` of the dataset."""
        info = super().get_data_info(idx)
        info['classes'] = tuple(self._metainfo['classes'])
        return info
