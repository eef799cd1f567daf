"""Datasets described by a CSV or JSON annotation file."""
import csv
import json
import logging
import os
import os.path as osp
import re
import stat
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log

from ..registry import DATASETS
from .base import BaseClsDataset, ClassesType, read_classes
from .file_listing import check_data_root, is_inside, resolve_path
from .split import SPLIT_NAMES, RatiosType

PATH_KEYS = ('path', 'img_path', 'image', 'filename', 'file')
SPLIT_ALIASES = {
    'train': 'train', 'training': 'train', 'val': 'val', 'valid': 'val',
    'validation': 'val', 'test': 'test', 'testing': 'test'
}
LABEL_SEPARATORS = re.compile(r'[;|]')

Token = Union[int, str]


def _is_int(token: Token) -> bool:
    if isinstance(token, bool):
        return False
    if isinstance(token, int):
        return True
    return isinstance(token, str) and re.fullmatch(r'\s*\d+\s*', token) \
        is not None


class _Record:
    """One raw sample: path, label tokens, split and where it was read."""
    __slots__ = ('path', 'tokens', 'split', 'where')

    def __init__(self, path: str, tokens: List[Token], split: Optional[str],
                 where: str) -> None:
        self.path, self.tokens, self.split, self.where = (path, tokens, split,
                                                          where)


def _tokens(value: Any, where: str) -> List[Token]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [v.strip() if isinstance(v, str) else v for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'{where}: label {value!r} is neither a class name '
                         'nor an integer index.')
    if isinstance(value, int):
        return [value]
    return [t.strip() for t in LABEL_SEPARATORS.split(value) if t.strip()]


def _split_value(value: Any, where: str) -> Optional[str]:
    if value is None or str(value).strip() == '':
        return None
    name = SPLIT_ALIASES.get(str(value).strip().lower())
    if name is None:
        raise ValueError(f'{where}: split {value!r} is not one of '
                         f'{SPLIT_NAMES}; fix the value or leave it empty for '
                         'an automatic split.')
    return name


def read_csv_records(path: str) -> List[_Record]:
    """Rows of a CSV with a header ``path,label`` or ``path,labels[,split]``.

    Raises:
        ValueError: A column is missing in the header or in a row; the
            message names the file and line.
    """
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        path_key = next((k for k in PATH_KEYS if k in header), None)
        label_key = next((k for k in ('label', 'labels') if k in header), None)
        if path_key is None or label_key is None:
            raise ValueError(
                f'{path}, line 1: header {header} needs a path column '
                f'(one of {PATH_KEYS}) and a "label" or "labels" column, '
                'e.g. "path,label,split".')
        cols = {k: header.index(k) for k in header}
        records = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f'{path}, line {reader.line_num}'
            needed = [path_key, label_key]
            short = [k for k in needed if cols[k] >= len(row)]
            if short or not row[cols[path_key]].strip():
                raise ValueError(
                    f'{where}: row {row} lacks column(s) '
                    f'{short or [path_key]} of header {header}; fill them in '
                    'or delete the row.')
            split = (row[cols['split']]
                     if 'split' in cols and cols['split'] < len(row) else None)
            records.append(
                _Record(row[cols[path_key]].strip(),
                        _tokens(row[cols[label_key]], where),
                        _split_value(split, where), where))
    return records


def read_json_records(path: str) -> Tuple[List[_Record], Optional[tuple]]:
    """Samples of a JSON list, or of ``{"classes": [...], "samples": [...]}``.

    Returns:
        tuple: The records and the classes named in the file (or None).
    """
    with open(path, encoding='utf-8') as f:
        try:
            content = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f'{path}: not valid JSON ({exc}).') from exc
    classes = None
    if isinstance(content, dict):
        classes = read_classes(content.get('classes'))
        content = content.get('samples', content.get('data_list'))
    if not isinstance(content, list):
        raise ValueError(
            f'{path}: expected a list of {{"path": ..., "label": ...}} or '
            '{"classes": [...], "samples": [...]}.')
    records = []
    for i, item in enumerate(content):
        where = f'{path}, sample {i}'
        item = item if isinstance(item, dict) else {}
        path_key = next((k for k in PATH_KEYS if k in item), None)
        label_key = next((k for k in ('label', 'labels', 'gt_label')
                          if k in item), None)
        if path_key is None or label_key is None:
            raise ValueError(
                f'{where}: {content[i]!r} needs a "path" and a "label" (or '
                '"labels") key; add them or delete the sample.')
        records.append(
            _Record(str(item[path_key]), _tokens(item[label_key], where),
                    _split_value(item.get('split'), where), where))
    return records, classes


def discover_classes(records: Sequence[_Record]) -> tuple:
    """Classes used by the labels: indices ``0..max`` or sorted names."""
    tokens = [t for r in records for t in r.tokens]
    if tokens and all(_is_int(t) for t in tokens):
        return tuple(str(i) for i in range(max(int(t) for t in tokens) + 1))
    return tuple(sorted({str(t) for t in tokens}))


def resolve_label(token: Token, classes: Sequence[str], where: str) -> int:
    """Index of a class name, or an index checked against ``classes``.

    A name wins over an index when both would match (``classes=('1', '0')``).
    """
    if str(token) in classes:
        return list(classes).index(str(token))
    if _is_int(token) and 0 <= int(token) < len(classes):
        return int(token)
    raise ValueError(
        f'{where}: label {token!r} is not in the class list {list(classes)} '
        f'(nor an index below {len(classes)}); fix the label or add the class '
        'to `classes`.')


@DATASETS.register_module()
class AnnotationFileDataset(BaseClsDataset):
    """Samples listed in a CSV or JSON annotation file.

    CSV: a header with a path column (``path``; also ``img_path``,
    ``image``, ``filename``), ``label`` or ``labels`` (several labels
    separated by ``;`` or ``|``) and optionally ``split``. JSON: a list of
    ``{"path": ..., "label": ...}`` / ``{"path": ..., "labels": [...]}``
    (optionally ``"split"``), or ``{"classes": [...], "samples": [...]}``.
    Labels are class names or integer indices. Relative paths are resolved
    against ``data_root``, or against the annotation file's folder when
    ``data_root`` is empty. A ``split`` of ``train``/``val``/``test`` (also
    ``validation``...) is used as is; samples without one are split
    automatically (stratified by ``split_ratios`` and ``split_seed``) when
    ``split`` is requested.

    Paths stay inside the root (``data_root``, else the annotation file's
    folder): a path whose text leaves it (``../x.png``, an absolute path
    elsewhere, ``~/x.png``), judged after ``~`` expansion and
    normalisation, is refused unless ``allow_paths_outside_root=True``.
    Symbolic links are not resolved for this check, so a link inside the
    root pointing to another disk is accepted. The same path given two
    different splits is an error (a file belongs to one split; to train on
    train+val, concatenate two datasets instead). The same real file
    reached through two different paths in two splits (links, or an
    automatic split of a path listed twice) is reported in a warning.

    Args:
        ann_file (str): The ``.csv`` or ``.json`` file.
        data_root (str): Folder of relative image paths (and of a relative
            ``ann_file``). Defaults to ``''``.
        classes (sequence[str] | str, optional): Class names or a text file.
            Defaults to None: the file's ``classes``, else the sorted label
            names, else ``'0'..'max'`` when every label is an index.
        split (str, optional): ``'train'``, ``'val'``, ``'test'`` or None.
            Defaults to None.
        multi_label (bool): Each sample has a list of labels. Defaults to
            False.
        split_ratios (sequence | dict, optional): Ratios of the automatic
            split. Defaults to None, i.e. ``(0.8, 0.1, 0.1)``.
        split_seed (int): Seed of the automatic split. Defaults to 0.
        pipeline (list): Transforms. Defaults to ``[]``.
        check_files (bool): Raise when an image file is missing. Defaults to
            True.
        allow_paths_outside_root (bool): Accept paths outside the root
            (logged as a one-line count). Defaults to False.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.

    Raises:
        FileNotFoundError: The annotation file, ``data_root`` (when given) or
            an image is missing.
        ValueError: ``data_root`` is None, a row lacks a column, a label is
            not a class, a single-label sample has zero or several labels, a
            path leaves the root, or one path is in two splits. Messages name
            the file and line (CSV) or sample index (JSON).
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 classes: ClassesType = None,
                 split: Optional[str] = None,
                 multi_label: bool = False,
                 split_ratios: RatiosType = None,
                 split_seed: int = 0,
                 pipeline: Sequence = (),
                 check_files: bool = True,
                 allow_paths_outside_root: bool = False,
                 **kwargs: Any) -> None:
        check_data_root('AnnotationFileDataset', data_root, required=False)
        self.multi_label = multi_label
        self.check_files = check_files
        self.allow_paths_outside_root = allow_paths_outside_root
        super().__init__(
            classes=classes,
            split=split,
            split_ratios=split_ratios,
            split_seed=split_seed,
            ann_file=ann_file,
            data_root=data_root,
            pipeline=list(pipeline),
            **kwargs)

    def _read(self) -> Tuple[List[_Record], Optional[tuple]]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'AnnotationFileDataset: ann_file {self.ann_file!r} does not '
                'exist; check ann_file and data_root in the config.')
        ext = osp.splitext(self.ann_file)[1].lower()
        if ext == '.csv':
            return read_csv_records(self.ann_file), None
        if ext == '.json':
            return read_json_records(self.ann_file)
        raise ValueError(f'AnnotationFileDataset: {self.ann_file!r} is '
                         'neither .csv nor .json.')

    def _label(self, record: _Record, classes: Sequence[str]) -> Any:
        labels = [resolve_label(t, classes, record.where)
                  for t in record.tokens]
        if self.multi_label:
            return sorted(set(labels))
        if len(labels) != 1:
            raise ValueError(
                f'{record.where}: expected exactly one label, got '
                f'{record.tokens}; fix the row or set multi_label=True.')
        return labels[0]

    def load_samples(self) -> tuple:
        """Read the file, resolve labels and paths, check the files."""
        check_data_root('AnnotationFileDataset', self.data_root,
                        required=False)
        records, file_classes = self._read()
        classes = (self.given_classes or file_classes
                   or discover_classes(records))
        base = self.data_root or osp.dirname(self.ann_file)
        self._check_inside_root(records, base)
        self._check_split_conflicts(records, base)
        self.file_ids = {}
        data_list, missing = [], []
        for record in records:
            path = osp.join(base, osp.expanduser(record.path))
            if self.check_files and not self._stat_file(path):
                missing.append(f'{path!r} ({record.where})')
            data_list.append(
                dict(img_path=path, gt_label=self._label(record, classes),
                     split=record.split))
        if missing:
            raise FileNotFoundError(
                f'AnnotationFileDataset: {len(missing)} image file(s) listed '
                f'in {self.ann_file!r} do not exist, first {missing[:5]}. '
                f'Relative paths are resolved against {base!r} (data_root, '
                'else the annotation file\'s folder); fix the paths or '
                'data_root, or delete the rows.')
        if not data_list:
            raise ValueError(f'AnnotationFileDataset: {self.ann_file!r} '
                             'lists no sample.')
        return data_list, classes

    def _stat_file(self, path: str) -> bool:
        """Whether ``path`` is a file; records its identity if so."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        self.file_ids[path] = (st.st_dev, st.st_ino)
        return stat.S_ISREG(st.st_mode)

    def _check_inside_root(self, records: Sequence[_Record],
                           base: str) -> None:
        """Refuse (or count) paths whose text leaves ``base``."""
        outside = [
            f'{r.where}: {r.path!r} -> {resolve_path(base, r.path)!r}'
            for r in records if not is_inside(resolve_path(base, r.path),
                                              base)]
        if not outside:
            return
        root = base or '.'
        if self.allow_paths_outside_root:
            print_log(
                f'AnnotationFileDataset: {len(outside)} of {len(records)} '
                f'path(s) in {self.ann_file!r} are outside the root '
                f'{root!r} (allowed by allow_paths_outside_root=True).',
                logger='current', level=logging.INFO)
            return
        more = (f' (and {len(outside) - 5} more)'
                if len(outside) > 5 else '')
        raise ValueError(
            f'AnnotationFileDataset: {len(outside)} path(s) in '
            f'{self.ann_file!r} resolve outside the root {root!r} '
            '(data_root, else the annotation file\'s folder): '
            f'{"; ".join(outside[:5])}{more}. Make the paths relative to '
            'the root, set data_root to a folder holding every image, or '
            'set allow_paths_outside_root=True to accept them.')

    def _check_split_conflicts(self, records: Sequence[_Record],
                               base: str) -> None:
        """Refuse one path given two different splits."""
        first: Dict[str, _Record] = {}
        conflicts = []
        for record in records:
            if record.split is None:
                continue
            key = osp.abspath(resolve_path(base, record.path))
            seen = first.setdefault(key, record)
            if seen.split != record.split:
                conflicts.append(
                    f'{seen.path!r} in {seen.split} ({seen.where}) and '
                    f'{record.path!r} in {record.split} ({record.where})')
        if not conflicts:
            return
        more = (f' (and {len(conflicts) - 5} more)'
                if len(conflicts) > 5 else '')
        raise ValueError(
            f'AnnotationFileDataset: {len(conflicts)} path(s) in '
            f'{self.ann_file!r} are in two splits: '
            f'{"; ".join(conflicts[:5])}{more}. A file belongs to one '
            'split; fix the split column or delete one of the rows.')
