"""YOLO-format (txt labels) detection and instance segmentation dataset.

One ``.txt`` per image, one object per line, coordinates normalised to
``[0, 1]``: ``class cx cy w h`` (detect) or ``class x1 y1 x2 y2 ...``
(segment, at least 3 points). :func:`parse_yolo_line` is shared with
:mod:`.det_validation`.
"""
import os.path as osp
from collections import Counter
from typing import Any, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from ..utils.image_ops import image_header_size
from .base import read_classes
from .coco_detection import build_det_pipeline, report_skipped
from .file_listing import list_files

YOLO_IMG_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                     '.webp')
#: Kinds of bad label line, as counted when ``skip_invalid=True``.
YOLO_PROBLEMS = ('bad_fields', 'bad_class', 'outside', 'degenerate_box')
_EPS = 1e-6


def read_yolo_classes(classes: Union[str, Sequence[str]]) -> tuple:
    """Class names from a list, a text file or a YOLO ``data.yaml``.

    Raises:
        ValueError: No names in the YAML file.
    """
    if isinstance(classes, str) and classes.endswith(('.yaml', '.yml')):
        import yaml
        with open(classes, encoding='utf-8') as f:
            data = yaml.safe_load(f) or {}
        names = data.get('names')
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names, key=int)]
        if not names:
            raise ValueError(f'{classes}: no "names" list; add the class '
                             'names (names: [a, b] or names: {0: a}).')
        return read_classes([str(n) for n in names])
    return read_classes(classes)


def parse_yolo_line(line: str, num_classes: int, width: int, height: int
                    ) -> Tuple[Optional[dict], Optional[Tuple[str, str]]]:
    """Parse one label line into an instance in pixels.

    Args:
        line (str): ``c cx cy w h`` or ``c x1 y1 ... xn yn`` (n >= 3).
        num_classes (int): Number of classes (``c`` in ``[0, C)``).
        width (int): Image width in pixels.
        height (int): Image height in pixels.

    Returns:
        tuple: ``(instance, None)`` with ``bbox`` xyxy pixels,
        ``bbox_label``, ``ignore_flag=0`` and ``mask`` (a pixel polygon list
        for segment lines, else None), or ``(None, (kind, detail))``.
    """
    fields = line.split()
    n = len(fields)
    if n != 5 and (n < 7 or n % 2 == 0):
        return None, ('bad_fields', (
            f'{n} fields; expected 5 (class cx cy w h) or an odd number >= 7 '
            '(class x1 y1 x2 y2 x3 y3 ...)'))
    try:
        label = int(fields[0])
        values = [float(v) for v in fields[1:]]
    except ValueError:
        return None, ('bad_fields', f'non-numeric field in {line.strip()!r}')
    if not 0 <= label < num_classes:
        return None, ('bad_class', (f'class {label} is not in [0, '
                                    f'{num_classes - 1}]'))
    bad = [v for v in values if not -_EPS <= v <= 1 + _EPS]
    if bad:
        return None, ('outside', (f'coordinates {bad[:4]} outside 0-1; YOLO '
                                  'labels are normalised by the image size'))
    values = [min(max(v, 0.0), 1.0) for v in values]
    mask = None
    if n == 5:
        cx, cy, w, h = values
        box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        if box[0] < -_EPS or box[1] < -_EPS or box[2] > 1 + _EPS or \
                box[3] > 1 + _EPS:
            return None, ('outside', (f'box cx cy w h={values} leaves the '
                                      'image (edges outside 0-1)'))
    else:
        xs, ys = values[0::2], values[1::2]
        box = [min(xs), min(ys), max(xs), max(ys)]
        mask = [[v * (width if i % 2 == 0 else height)
                 for i, v in enumerate(values)]]
    box = [min(max(box[0], 0.0), 1.0) * width,
           min(max(box[1], 0.0), 1.0) * height,
           min(max(box[2], 0.0), 1.0) * width,
           min(max(box[3], 0.0), 1.0) * height]
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        return None, ('degenerate_box', 'zero width or height')
    return dict(bbox=box, bbox_label=label, ignore_flag=0, mask=mask), None


def yolo_label_path(img_path: str, img_dir: str, label_dir: str) -> str:
    """The ``.txt`` of an image: same relative path under ``label_dir``."""
    rel = osp.relpath(img_path, img_dir)
    return osp.join(label_dir, osp.splitext(rel)[0] + '.txt')


@DATASETS.register_module()
class YoloDetDataset(BaseDataset):
    """YOLO txt labels: ``<img_dir>/<stem>.<ext>`` with ``<label_dir>/
    <stem>.txt`` (sub-folders paired by relative path).

    An image without a label file (or with an empty one) is a negative.
    Segment lines give polygon masks (in pixels), detect lines boxes only.
    ``metainfo`` holds ``classes``, ``cat_ids`` (``0..C-1``) and ``palette``.

    Args:
        data_root (str): Root folder; ``img_dir`` and ``label_dir`` are
            relative to it unless absolute. Defaults to ``''``.
        img_dir (str): Image folder. Defaults to ``'images'``.
        label_dir (str, optional): Label folder; None replaces the last
            ``images`` component of ``img_dir`` by ``labels`` (the YOLO
            convention, e.g. ``images/train`` -> ``labels/train``).
        classes (sequence[str] | str): Class names, a text file with one per
            line, or a YOLO ``data.yaml`` (its ``names``).
        pipeline (sequence): Transforms (dicts from the dinov3_mm registry).
        with_mask (bool): Keep segment polygons as masks; then a detect
            line (no polygon) is invalid. Defaults to False.
        filter_empty (bool): Drop images without objects while training.
            Defaults to False.
        skip_invalid (bool): Drop invalid lines instead of raising; counted
            and logged in one warning (:attr:`skipped`). Defaults to False.
        img_suffixes (sequence[str]): Image suffixes listed.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments.

    Raises:
        FileNotFoundError: The image folder is missing.
        ValueError: No classes, or a bad line; the message names the label
            file, the line number and what to do.
    """

    METAINFO: dict = dict(classes=None, cat_ids=None, palette=None)

    def __init__(self,
                 data_root: str = '',
                 img_dir: str = 'images',
                 label_dir: Optional[str] = None,
                 classes: Any = None,
                 pipeline: Sequence = (),
                 with_mask: bool = False,
                 filter_empty: bool = False,
                 skip_invalid: bool = False,
                 img_suffixes: Sequence[str] = YOLO_IMG_SUFFIXES,
                 metainfo: Optional[dict] = None,
                 **kwargs: Any) -> None:
        from .seg_folder import default_palette
        metainfo = dict(metainfo or {})
        source = classes if classes is not None else metainfo.get('classes')
        if source is None:
            raise ValueError('YoloDetDataset: give classes (names, a text '
                             'file or a data.yaml).')
        names = read_yolo_classes(source)
        metainfo.update(classes=names, cat_ids=tuple(range(len(names))))
        metainfo.setdefault('palette', default_palette(len(names) + 1)[1:])
        if label_dir is None:
            parts = img_dir.replace('\\', '/').split('/')
            if 'images' not in parts:
                raise ValueError(
                    f'YoloDetDataset: img_dir={img_dir!r} has no "images" '
                    'component to replace by "labels"; give label_dir.')
            idx = len(parts) - 1 - parts[::-1].index('images')
            parts[idx] = 'labels'
            label_dir = '/'.join(parts)
        self.img_dir = img_dir
        self.label_dir = label_dir
        self.with_mask = with_mask
        self.filter_empty = filter_empty
        self.skip_invalid = skip_invalid
        self.img_suffixes = tuple(s.lower() for s in img_suffixes)
        self.skipped: Counter = Counter()
        super().__init__(data_root=data_root, metainfo=metainfo,
                         pipeline=build_det_pipeline(pipeline), **kwargs)

    def _folder(self, path: str) -> str:
        if osp.isabs(path) or not self.data_root:
            return path
        return osp.join(self.data_root, path)

    def load_data_list(self) -> List[dict]:
        """List the images and parse their label files."""
        owner = type(self).__name__
        img_dir = self._folder(self.img_dir)
        label_dir = self._folder(self.label_dir)
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'{owner}: image folder {img_dir} does '
                                    'not exist; check data_root / img_dir.')
        paths, _ = list_files(img_dir, self.img_suffixes, owner=owner,
                              reserved=[img_dir, label_dir])
        if not paths:
            suffixes = ', '.join(self.img_suffixes)
            raise ValueError(f'{owner}: no image ({suffixes}) in {img_dir}.')
        num_classes = len(self._metainfo['classes'])
        self.skipped = Counter()
        examples: List[str] = []
        data_list = []
        for img_id, path in enumerate(sorted(paths)):
            width, height = image_header_size(path)
            label_path = yolo_label_path(path, img_dir, label_dir)
            instances = []
            lines = []
            if osp.isfile(label_path):
                with open(label_path, encoding='utf-8') as f:
                    lines = f.read().splitlines()
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                inst, problem = parse_yolo_line(line, num_classes, width,
                                                height)
                if inst is not None and self.with_mask and not inst['mask']:
                    problem = ('bad_fields', 'a detect line (5 fields) in a '
                               'mask dataset; give the polygon or set '
                               'with_mask=False')
                if problem:
                    message = (f'{label_path}, line {lineno}: {problem[1]}; '
                               'fix the line or set skip_invalid=True to '
                               'drop it')
                    if not self.skip_invalid:
                        raise ValueError(f'{owner}: {message}')
                    self.skipped[problem[0]] += 1
                    examples.append(message.split('; ')[0])
                    continue
                if not self.with_mask:
                    inst['mask'] = None
                instances.append(inst)
            if self.filter_empty and not self.test_mode and not instances:
                continue
            data_list.append(dict(img_path=path, img_id=img_id, height=height,
                                  width=width, instances=instances))
        report_skipped(owner, label_dir, self.skipped, examples)
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """The data info of ``idx`` with the ``classes`` of the dataset."""
        info = super().get_data_info(idx)
        info['classes'] = tuple(self._metainfo['classes'])
        return info
