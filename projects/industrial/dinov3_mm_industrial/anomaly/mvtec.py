"""Reading MVTec-AD-style folders.

Layout of one category::

    <category>/train/good/*.png                 defect-free training images
    <category>/test/good/*.png                  defect-free test images
    <category>/test/<defect>/*.png              defective test images
    <category>/ground_truth/<defect>/<name>_mask.png   their masks

A data root is either one category folder (it holds ``train/``) or a folder
of category folders.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from dinov3_mm.datasets import IMG_EXTENSIONS, read_image

GOOD = 'good'


@dataclass
class TestImage:
    """One test image: its path, folder label and mask file (if defective)."""

    path: str
    label: str
    mask_path: Optional[str] = None

    @property
    def is_anomaly(self) -> bool:
        """True for images outside ``test/good``."""
        return self.label != GOOD


@dataclass
class Category:
    """The files of one category."""

    name: str
    root: str
    train: List[str] = field(default_factory=list)
    test: List[TestImage] = field(default_factory=list)


def _images(folder: str) -> List[str]:
    if not osp.isdir(folder):
        return []
    return sorted(
        osp.join(folder, n) for n in os.listdir(folder)
        if not n.startswith('.') and n.lower().endswith(IMG_EXTENSIONS))


def _subfolders(folder: str) -> List[str]:
    if not osp.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder)
                  if not n.startswith('.') and osp.isdir(osp.join(folder, n)))


def find_categories(data_root: str) -> List[Tuple[str, str]]:
    """``(name, folder)`` of every category under ``data_root``.

    Raises:
        FileNotFoundError: ``data_root`` is missing or holds no category
            (no ``train/`` folder in it or in any subfolder).
    """
    if not osp.isdir(data_root):
        raise FileNotFoundError(f'Anomaly data root {data_root!r} is not a '
                                'folder; check the path.')
    if osp.isdir(osp.join(data_root, 'train')):
        return [(osp.basename(osp.normpath(data_root)), data_root)]
    found = [(name, osp.join(data_root, name))
             for name in _subfolders(data_root)
             if osp.isdir(osp.join(data_root, name, 'train'))]
    if not found:
        raise FileNotFoundError(
            f'No MVTec-style category under {data_root!r}: expected '
            '<category>/train/good/*.png (or train/good/*.png directly in '
            'it).')
    return found


def mask_path_for(category_root: str, image_path: str, label: str) -> str:
    """Where the mask of a defective test image must be."""
    stem = osp.splitext(osp.basename(image_path))[0]
    return osp.join(category_root, 'ground_truth', label, f'{stem}_mask.png')


def load_category(category_root: str,
                  name: Optional[str] = None,
                  require_masks: bool = True) -> Category:
    """List the training and test images of one category folder.

    Args:
        category_root (str): The category folder.
        name (str, optional): Its name. Defaults to the folder name.
        require_masks (bool): Every defective test image must have its
            mask. Defaults to True.

    Raises:
        FileNotFoundError: No normal training image, no test image, or a
            missing mask (the message names the image and the expected
            mask file).
    """
    name = name or osp.basename(osp.normpath(category_root))
    train_dir = osp.join(category_root, 'train', GOOD)
    train = _images(train_dir)
    if not train:
        raise FileNotFoundError(
            f'No normal training images in {train_dir!r} (category {name!r}):'
            f' put defect-free images with extensions {IMG_EXTENSIONS} there;'
            ' the memory bank is built from them.')
    test_dir = osp.join(category_root, 'test')
    test = []
    for label in _subfolders(test_dir):
        for path in _images(osp.join(test_dir, label)):
            mask = None
            if label != GOOD:
                mask = mask_path_for(category_root, path, label)
                if not osp.isfile(mask):
                    if require_masks:
                        raise FileNotFoundError(
                            f'Missing ground-truth mask for defect image '
                            f'{path!r}: expected {mask!r}. Add the mask, move '
                            'the image out of test/, or turn pixel metrics '
                            'off (--no-pixel-metrics).')
                    mask = None
            test.append(TestImage(path, label, mask))
    if not test:
        raise FileNotFoundError(
            f'No test images in {test_dir!r} (category {name!r}): expected '
            'test/good/*.png and test/<defect>/*.png.')
    return Category(name, category_root, train, test)


def read_mask(mask_path: str, image_path: str,
              image_shape: Tuple[int, int]) -> np.ndarray:
    """Read a ground-truth mask as a bool ``(H, W)`` array (nonzero = defect).

    Args:
        mask_path (str): The mask file.
        image_path (str): Its image, named in errors.
        image_shape (tuple[int, int]): ``(H, W)`` of the image.

    Raises:
        OSError: The mask cannot be read.
        ValueError: Its size differs from the image's.
    """
    mask = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise OSError(f'Could not read mask {mask_path!r}; is it an image?')
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape[:2] != tuple(image_shape):
        raise ValueError(
            f'Mask size mismatch: {mask_path!r} is {mask.shape[1]}x'
            f'{mask.shape[0]} (WxH) but its image {image_path!r} is '
            f'{image_shape[1]}x{image_shape[0]}; masks must have the size of '
            'their image.')
    return mask > 0


def load_resized(paths: Sequence[str],
                 img_size: int) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """Read images as RGB and resize them to ``img_size`` squares.

    Returns:
        tuple: uint8 ``(N, img_size, img_size, 3)`` array and the original
        ``(H, W)`` of every image.
    """
    batch, shapes = [], []
    for path in paths:
        image = read_image(path)
        shapes.append(image.shape[:2])
        if image.shape[:2] != (img_size, img_size):
            image = cv2.resize(image, (img_size, img_size),
                               interpolation=cv2.INTER_LINEAR)
        batch.append(image)
    return np.stack(batch), shapes
