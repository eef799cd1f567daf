"""Folders of unlabeled images, for self-supervised (DINO) pretraining."""
import logging
import os
from typing import Any, List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..registry import DATASETS, TRANSFORMS
from .file_listing import check_data_root, list_files
from .image_folder import IMG_EXTENSIONS
from .transforms.loading import LoadImage


@DATASETS.register_module()
class UnlabeledImageDataset(BaseDataset):
    """Every image file under a folder, without labels.

    Files are listed recursively (sub-folders in any layout, e.g. one per
    acquisition site or date) and sorted; extensions are compared
    case-insensitively (``.PNG``, ``.Tif``...) and hidden files and folders
    (``.DS_Store``, ``.cache/``) are skipped. Files with other extensions are
    ignored and counted in one warning. Symbolic links are followed, but
    each real folder is entered once and each real file listed once (under
    the first path in listing order); skipped loops and duplicates are
    reported in a warning. Each data info is
    ``dict(img_path=...)``; the pipeline typically is ``[LoadImage,
    DINOMultiCrop, PackMultiCropInputs]``.

    Unreadable files (corrupt, truncated, not really an image): by default
    the ``ValueError: Cannot read image <path>: ...`` of :class:`LoadImage`
    propagates. With ``skip_unreadable=True`` such a sample is dropped
    and mmengine's :class:`~mmengine.dataset.BaseDataset` fetches a random
    other index instead (up to ``max_refetch`` times, drawn from
    ``numpy.random``, so seeded runs stay reproducible); a warning naming the
    file is logged once per file and :attr:`skipped` lists the paths. Only
    errors raised by a :class:`LoadImage` step are skipped; errors of other
    transforms always propagate. With dataloader workers each worker
    process has its own copy of the dataset, so :attr:`skipped` of the
    main-process object only fills with ``num_workers=0``; the warnings are
    logged in every case.

    Args:
        data_root (str): The folder holding the images.
        pipeline (sequence): Transforms (dicts are built from the
            ``dinov3_mm`` registry, so no default scope is needed).
            Defaults to ``()``.
        extensions (sequence[str]): Accepted extensions, case-insensitive.
            Defaults to :data:`IMG_EXTENSIONS` (``.jpg .jpeg .png .bmp .tif
            .tiff .webp .ppm .pgm .pbm .gif``).
        recursive (bool): Include images in sub-folders. Defaults to True.
        skip_unreadable (bool): Skip unreadable images instead of raising
            (not possible with ``test_mode=True``, where mmengine refuses to
            drop samples). Defaults to False.
        max_refetch (int): Random refetches before giving up on one index
            when samples are skipped. Defaults to 1000.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``indices``, ``lazy_init``, ``serialize_data``...).

    Raises:
        ValueError: ``data_root`` is None or empty.
        FileNotFoundError: ``data_root`` is not a folder.
        ValueError: No image with an accepted extension under ``data_root``.
    """

    METAINFO: dict = dict()

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence = (),
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 recursive: bool = True,
                 skip_unreadable: bool = False,
                 max_refetch: int = 1000,
                 **kwargs: Any) -> None:
        check_data_root('UnlabeledImageDataset', data_root)
        if isinstance(extensions, str):
            extensions = (extensions, )
        self.extensions = tuple(e if e.startswith('.') else f'.{e}'
                                for e in extensions)
        if not self.extensions:
            raise ValueError('UnlabeledImageDataset: extensions is empty.')
        if skip_unreadable and kwargs.get('test_mode', False):
            raise ValueError(
                'UnlabeledImageDataset: skip_unreadable=True needs '
                'test_mode=False (mmengine does not drop test samples).')
        self.recursive = recursive
        self.skip_unreadable = skip_unreadable
        self.skipped: List[str] = []
        self.ignored_files: List[str] = []
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t
                    for t in pipeline]
        super().__init__(
            data_root=os.fspath(data_root),
            pipeline=pipeline,
            max_refetch=max_refetch,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """``dict(img_path=...)`` for every image under ``data_root``."""
        root = check_data_root('UnlabeledImageDataset', self.data_root)
        images, others = list_files(root, self.extensions,
                                    owner='UnlabeledImageDataset',
                                    recursive=self.recursive)
        self.ignored_files = others
        if others:
            print_log(
                f'UnlabeledImageDataset: ignored {len(others)} file(s) in '
                f'{root!r} whose extension is not one of {self.extensions}, '
                f'e.g. {others[0]!r}.',
                logger='current', level=logging.WARNING)
        if not images:
            where = 'under' if self.recursive else 'directly in'
            raise ValueError(
                f'UnlabeledImageDataset: no image {where} {root!r}; accepted '
                f'extensions (case-insensitive): {self.extensions}.')
        return [dict(img_path=path) for path in images]

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; None (refetch) for a skipped unreadable file."""
        data = self.get_data_info(idx)
        if not self.skip_unreadable:
            return self.pipeline(data)
        for transform in self.pipeline.transforms:
            if isinstance(transform, LoadImage):
                try:
                    data = transform(data)
                except ValueError as exc:
                    self._skip(data.get('img_path'), exc)
                    return None
            else:
                data = transform(data)
            if data is None:
                return None
        return data

    def _skip(self, path: Optional[str], exc: Exception) -> None:
        if path not in self.skipped:
            self.skipped.append(path)
            print_log(
                f'UnlabeledImageDataset: skipping unreadable image {path} '
                f'({exc}).', logger='current', level=logging.WARNING)
        if len(self.skipped) >= len(self):
            raise RuntimeError(
                f'UnlabeledImageDataset: none of the {len(self)} image(s) '
                f'under {self.data_root!r} could be read; e.g. {path}: {exc}')
