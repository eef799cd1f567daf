"""Datasets stored as folders of class folders."""
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from ..registry import DATASETS
from .base import BaseClsDataset, ClassesType
from .file_listing import FileLister, check_data_root, list_files
from .split import SPLIT_NAMES, RatiosType

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm', '.pgm', '.pbm', '.gif')


class EmptyClassError(ValueError):
    """A class has no image in any split; the message says where the
    ``skip_empty_classes`` flag goes."""


def list_images(folder: str,
                extensions: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Images under ``folder`` (recursive, sorted) and the other files.

    Hidden files (``.DS_Store``...) are neither images nor reported. Links
    are followed, each real folder and file is listed once and what is
    skipped is logged (see :mod:`dinov3_mm.datasets.file_listing`).
    """
    return list_files(folder, extensions, owner='list_images')


def _subfolders(folder: str) -> List[str]:
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_dir() and not e.name.startswith('.'))


def _order(item: tuple) -> tuple:
    (split, name), _ = item
    return (SPLIT_NAMES.index(split) if split else -1, name)


def has_split_folders(data_root: str) -> bool:
    """Whether ``data_root`` holds ``train/``, ``val/`` or ``test/``."""
    return any(osp.isdir(osp.join(data_root, s)) for s in SPLIT_NAMES)


@DATASETS.register_module()
class ImageFolderDataset(BaseClsDataset):
    """Images in one folder per class, optionally inside split folders.

    Two layouts are recognised:

    * A: ``data_root/{train,val,test}/<class>/**/*.png`` — the split is the
      folder. With ``split=None`` every split folder is loaded and each data
      info records its ``split``.
    * B: ``data_root/<class>/**/*.png`` — no split folders. With ``split``
      given, a deterministic stratified split by ``split_ratios`` and
      ``split_seed`` selects the samples (every class appears in every split
      when it has enough images); ``split=None`` keeps all images.

    Class indices follow ``classes`` or, by default, the sorted names of the
    class folders (the union over the split folders in layout A, so every
    split uses the same indices). Files with other extensions are ignored
    and counted in a warning.

    Symbolic links are followed, but inside one split every real folder is
    entered once and every real file listed once (under the first path in
    listing order); links looping back (e.g. to data_root) or reaching a
    folder or file a second time are skipped and reported in a warning. A
    file present in two split folders (copied as a link) is kept in both and
    reported in a warning naming the files and splits.

    Args:
        data_root (str): The dataset folder.
        split (str, optional): ``'train'``, ``'val'``, ``'test'`` or None.
            Defaults to None.
        classes (sequence[str] | str, optional): Class names or a text file
            with one per line. Defaults to None (the folder names).
        pipeline (list): Transforms. Defaults to ``[]``.
        split_ratios (sequence | dict, optional): Ratios of the automatic
            split in layout B. Defaults to None, i.e. ``(0.8, 0.1, 0.1)``.
        split_seed (int): Seed of the automatic split. Defaults to 0.
        extensions (sequence[str]): Image file extensions, case-insensitive.
            Defaults to :data:`IMG_EXTENSIONS`.
        skip_empty_classes (bool): Skip classes without any image (with a
            warning counting them) instead of raising. A skipped folder's
            class is kept when ``classes`` is given and dropped otherwise,
            so set it alike in the datasets of every split. A class folder
            empty in one split while the class has images in another is
            only reported (the class keeps its index), with or without the
            flag. Defaults to False.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.

    Raises:
        FileNotFoundError: ``data_root`` or the requested split folder is
            missing, or a given class has no folder in layout B.
        EmptyClassError: A class has no image in any split (unless
            ``skip_empty_classes``).
        ValueError: ``data_root`` is None or empty, a folder is not in the
            given ``classes``, or no image is found.
    """

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 classes: ClassesType = None,
                 pipeline: Sequence = (),
                 split_ratios: RatiosType = None,
                 split_seed: int = 0,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 skip_empty_classes: bool = False,
                 **kwargs: Any) -> None:
        check_data_root('ImageFolderDataset', data_root)
        self.extensions = tuple(extensions)
        self.skip_empty_classes = skip_empty_classes
        self.empty_class_folders: List[str] = []
        super().__init__(
            classes=classes,
            split=split,
            split_ratios=split_ratios,
            split_seed=split_seed,
            data_root=data_root,
            pipeline=list(pipeline),
            **kwargs)

    def _split_folders(self) -> Dict[Optional[str], str]:
        root = check_data_root('ImageFolderDataset', self.data_root)
        if not has_split_folders(root):
            return {None: root}
        if self.split is not None and not osp.isdir(osp.join(root,
                                                             self.split)):
            present = [s for s in SPLIT_NAMES if osp.isdir(osp.join(root, s))]
            raise FileNotFoundError(
                f'ImageFolderDataset: {osp.join(root, self.split)!r} does not '
                f'exist (found split folders {present}); create it or choose '
                'another split.')
        return {s: osp.join(root, s) for s in SPLIT_NAMES
                if osp.isdir(osp.join(root, s))}

    def _scan(self) -> Dict[Tuple[Optional[str], str], List[str]]:
        """Images of every ``(split, class folder)``."""
        found, ignored = {}, []
        split_folders = self._split_folders()
        self.file_ids = {}
        for split, folder in split_folders.items():
            names = _subfolders(folder)
            class_folders = [osp.join(folder, name) for name in names]
            lister = FileLister(
                'ImageFolderDataset',
                reserved=[self.data_root, *split_folders.values(),
                          *class_folders])
            for name, class_folder in zip(names, class_folders):
                images, others = lister.list(class_folder, self.extensions)
                found[(split, name)] = images
                ignored += others
            lister.report()
            self.file_ids.update(lister.file_ids)
        if ignored:
            print_log(
                f'ImageFolderDataset: ignored {len(ignored)} file(s) in '
                f'{self.data_root!r} whose extension is not one of '
                f'{self.extensions}, e.g. {ignored[0]!r}.',
                logger='current', level=30)
        return found

    def _check_empty(self, found: Dict[Tuple[Optional[str], str],
                                       List[str]]) -> None:
        """Classes without any image fail (or are skipped); a class folder
        empty in one split only is reported, its class stays.

        Every split's dataset scans all split folders, so the class list,
        and with it the class indices, is the same in train, val and test;
        a class empty in one split but not in another keeps its index.
        """
        with_images = {name for (_, name), images in found.items() if images}
        empty = [osp.join(self.data_root, *(k for k in key if k))
                 for key, images in found.items() if not images]
        self.empty_class_folders = empty
        absent = [osp.join(self.data_root, *(k for k in key if k))
                  for key, images in found.items()
                  if not images and key[1] not in with_images]
        partly = sorted(set(empty) - set(absent))
        if partly:
            print_log(
                f'ImageFolderDataset: class folder(s) without images in '
                f'their split: {partly}; their classes have images in other '
                'splits and keep their index.', logger='current', level=30)
        if not absent:
            return
        if not self.skip_empty_classes:
            raise EmptyClassError(
                f'ImageFolderDataset: class folder(s) without images: '
                f'{absent}. Add images with extensions {self.extensions}, '
                f'remove the folder(s), or set skip_empty_classes=True in '
                f'every dataset that reads {self.data_root} (the shared '
                'dataset dict of the config, or train_dataloader.dataset, '
                'val_dataloader.dataset and test_dataloader.dataset alike) '
                'so all splits keep the same classes.')
        print_log(
            f'ImageFolderDataset: skipped {len(absent)} empty class '
            f'folder(s): {absent}', logger='current', level=30)

    def load_samples(self) -> tuple:
        """Scan the folders; see the class docstring for the rules."""
        found = self._scan()
        self._check_empty(found)
        with_images = {name for (_, name), images in found.items() if images}
        folder_classes = sorted(
            with_images if self.skip_empty_classes else
            {name for _, name in found})
        classes = self.given_classes
        if classes is None:
            classes = tuple(folder_classes)
        else:
            self._check_given(classes, folder_classes, found)
        index = {name: i for i, name in enumerate(classes)}
        data_list = [
            dict(img_path=path, gt_label=index[name], split=split)
            for (split, name), images in sorted(found.items(), key=_order)
            for path in images
        ]
        if not data_list:
            raise ValueError(
                f'ImageFolderDataset: no image with extensions '
                f'{self.extensions} under {self.data_root!r}; expected '
                'data_root/<class>/*.png or data_root/train/<class>/*.png.')
        return data_list, classes

    def _check_given(self, classes: Sequence[str],
                     folder_classes: List[str], found: dict) -> None:
        unknown = [c for c in folder_classes if c not in classes]
        if unknown:
            raise ValueError(
                f'ImageFolderDataset: folder(s) {unknown} under '
                f'{self.data_root!r} are not in classes={list(classes)}; add '
                'them to classes or move the folders out of data_root.')
        if None in {split for split, _ in found}:
            missing = [c for c in classes if c not in folder_classes
                       and osp.join(self.data_root, c)
                       not in self.empty_class_folders]
            if missing:
                raise FileNotFoundError(
                    f'ImageFolderDataset: no folder for class(es) {missing} '
                    f'in {self.data_root!r}; create them or remove the '
                    'classes from the config.')
