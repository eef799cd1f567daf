"""Loading semantic segmentation masks (index, palette or RGB-encoded)."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image, UnidentifiedImageError

from ...registry import TRANSFORMS

MASK_FORMATS = ('auto', 'index', 'rgb')


class UnknownColourError(ValueError):
    """An RGB-encoded mask has a colour that is not in the palette."""


def _encode(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def rgb_to_index(rgb: np.ndarray, palette: Sequence[Sequence[int]],
                 path: str = '<array>') -> np.ndarray:
    """Map an RGB ``(H, W, 3)`` mask to class indices through ``palette``.

    Raises:
        UnknownColourError: a colour is not in the palette (a ValueError);
            the message names the file and the unknown colours.
    """
    codes = np.asarray([_encode(np.asarray(c, dtype=np.int64))
                        for c in palette], dtype=np.int64)
    lookup = {int(c): i for i, c in reversed(list(enumerate(codes)))}
    values, inverse = np.unique(_encode(rgb), return_inverse=True)
    unknown = [int(v) for v in values if int(v) not in lookup]
    if unknown:
        colours = [((v >> 16) & 255, (v >> 8) & 255, v & 255)
                   for v in unknown[:10]]
        raise UnknownColourError(
            f'Mask {path} has colour(s) {colours} not in the palette '
            f'{[list(map(int, c)) for c in palette]}; fix the mask or the '
            'dataset palette.')
    mapped = np.asarray([lookup[int(v)] for v in values], dtype=np.int64)
    return mapped[inverse.reshape(rgb.shape[:2])]


def read_seg_map(path: str,
                 mask_format: str = 'auto',
                 palette: Optional[Sequence[Sequence[int]]] = None
                 ) -> np.ndarray:
    """Decode a mask file into its raw class-index map (before
    ``reduce_zero_label``), as :class:`LoadSegAnnotation` does.

    A palette (P-mode) PNG gives its palette indices; a grayscale (or
    16-bit) mask its values; an RGB mask whose channels are equal its
    values; any other RGB mask is mapped through ``palette`` (see
    :class:`LoadSegAnnotation` for ``mask_format``).

    Raises:
        UnknownColourError: an RGB mask has a colour not in ``palette``.
        ValueError: the file cannot be read, or cannot be decoded with
            ``mask_format`` / ``palette``; the message names the file.
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(f'mask_format={mask_format!r}; expected one of '
                         f'{MASK_FORMATS}.')
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == 'P' and mask_format != 'rgb':
                return np.asarray(image)
            if mode in ('RGB', 'RGBA', 'P', 'LA', 'PA'):
                rgb = np.asarray(image.convert('RGB'))
            elif mode == '1':
                return np.asarray(image.convert('L')) // 255
            else:
                data = np.asarray(image)
                if mask_format == 'rgb':
                    raise ValueError(
                        f'mask_format="rgb" but the mask is {mode} mode '
                        '(single channel)')
                return data
    except (UnidentifiedImageError, OSError, SyntaxError,
            ValueError) as exc:
        raise ValueError(f'Cannot read mask {path}: {exc}') from exc
    gray = (np.array_equal(rgb[..., 0], rgb[..., 1])
            and np.array_equal(rgb[..., 0], rgb[..., 2]))
    if mask_format == 'index' or (mask_format == 'auto' and gray):
        if not gray:
            raise ValueError(
                f'Mask {path} is a colour (RGB) image but '
                'mask_format="index"; use mask_format="rgb" (or "auto") '
                'with the dataset palette.')
        return rgb[..., 0]
    if palette is None:
        raise ValueError(
            f'Mask {path} is RGB-encoded but no palette is known; give '
            'LoadSegAnnotation(rgb_palette=...) or the dataset palette.')
    return rgb_to_index(rgb, palette, path)


def reduce_zero_label_map(seg: np.ndarray) -> np.ndarray:
    """As mmseg: 0 -> 255, k -> k - 1, 255 (ignore) stays 255 (int64)."""
    seg = np.asarray(seg).astype(np.int64)
    seg[seg == 0] = 255
    seg = seg - 1
    seg[seg == 254] = 255
    return seg


def check_mask_values(seg: np.ndarray, num_classes: Optional[int],
                      ignore: int, what: str, note: str = '') -> np.ndarray:
    """Refuse class indices outside ``[0, num_classes)`` (but ``ignore``).

    Args:
        seg (np.ndarray): Integer mask.
        num_classes (int, optional): Not checked when None.
        ignore (int): The ignore index.
        what (str): Start of the error message, e.g. ``'Mask <path>'``.
        note (str): Appended inside the message's parentheses.

    Returns:
        np.ndarray: ``seg``, as uint8 when its values fit.
    """
    if num_classes is not None:
        bad = np.unique(seg[((seg < 0) | (seg >= num_classes))
                            & (seg != ignore)])
        if bad.size:
            raise ValueError(
                f'{what} has values {bad[:20].tolist()} outside the '
                f'{num_classes} classes [0, {num_classes - 1}] (ignore index '
                f'{ignore}{note}); fix the mask or the dataset classes.')
    if seg.size == 0 or (seg.min() >= 0 and seg.max() <= 255):
        seg = seg.astype(np.uint8)
    return seg


def store_seg_map(results: dict, seg: np.ndarray,
                  reduce_zero_label: bool) -> dict:
    """Put ``seg`` in ``results`` as ``gt_seg_map``, listed in ``seg_fields``
    so that geometric transforms move it with the image."""
    results['gt_seg_map'] = seg
    fields = results.setdefault('seg_fields', [])
    if 'gt_seg_map' not in fields:
        fields.append('gt_seg_map')
    results['reduce_zero_label'] = reduce_zero_label
    return results


@TRANSFORMS.register_module()
class LoadSegAnnotation(BaseTransform):
    """Load ``seg_map_path`` as the class-index map ``gt_seg_map``.

    Decoding (``mask_format='auto'``): a palette (P-mode) PNG gives its
    palette indices; a grayscale (or 16-bit) mask its values; an RGB mask
    whose three channels are equal its values; any other RGB mask is mapped
    colour by colour through ``rgb_palette`` (or ``results['palette']``,
    which :class:`SegFolderDataset` fills from its metainfo). ``'index'``
    never maps colours (a true colour mask is an error); ``'rgb'`` always
    does (P-mode masks are converted to their colours first).

    Then ``reduce_zero_label`` maps 0 to 255 and lowers the others by one,
    and the mask is checked: its size must equal ``results['img']``'s (when
    the image is loaded first, as it should be) and its values must lie in
    ``[0, num_classes)`` or equal ``ignore_index``.

    A ``seg_map_path`` of None (an image :class:`SegFolderDataset` kept
    with ``allow_missing_masks=True``) gives a ``gt_seg_map`` filled with
    the ignore index, the size of the loaded image: the loss ignores it and
    the metric counts none of its pixels.

    Required Keys:

    - seg_map_path (None: no mask)

    Optional Keys:

    - img, img_path (size check)
    - reduce_zero_label, num_classes, ignore_index, palette

    Added Keys:

    - gt_seg_map (np.uint8 ``(H, W)``; np.int64 when a value exceeds 255)
    - seg_fields (``'gt_seg_map'`` appended)

    Args:
        reduce_zero_label (bool, optional): None takes
            ``results['reduce_zero_label']`` (False when absent).
        mask_format (str): ``'auto'``, ``'index'`` or ``'rgb'``.
        rgb_palette (sequence[sequence[int]], optional): RGB colour of each
            class, overriding ``results['palette']``.
        num_classes (int, optional): Number of classes, overriding
            ``results['num_classes']``; None (and absent) skips the value
            check.
        ignore_index (int, optional): Defaults to
            ``results.get('ignore_index', 255)``.

    Raises:
        ValueError: unreadable mask, unknown colour, size mismatch or values
            outside the classes; every message names the file.
    """

    #: Dropped from inference pipelines (there are no labels there).
    loads_annotations = True

    def __init__(self,
                 reduce_zero_label: Optional[bool] = None,
                 mask_format: str = 'auto',
                 rgb_palette: Optional[Sequence[Sequence[int]]] = None,
                 num_classes: Optional[int] = None,
                 ignore_index: Optional[int] = None) -> None:
        if mask_format not in MASK_FORMATS:
            raise ValueError(f'mask_format={mask_format!r}; expected one of '
                             f'{MASK_FORMATS}.')
        self.reduce_zero_label = reduce_zero_label
        self.mask_format = mask_format
        self.rgb_palette = ([list(map(int, c)) for c in rgb_palette]
                            if rgb_palette is not None else None)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _read(self, path: str, palette) -> np.ndarray:
        return read_seg_map(path, self.mask_format, palette)

    def _ignore_map(self, results: dict, ignore: int) -> np.ndarray:
        """A mask of ``ignore`` the size of the (already loaded) image."""
        img = results.get('img')
        if results.get('ori_shape') is not None:
            shape = tuple(results['ori_shape'])[:2]
        elif img is not None:
            shape = img.shape[:2]
        elif results.get('img_shape') is not None:
            shape = tuple(results['img_shape'])[:2]
        else:
            raise ValueError(
                f'LoadSegAnnotation: image {results.get("img_path")} has no '
                'mask (seg_map_path is None) and no image was loaded to take '
                'the size from; put LoadImage before LoadSegAnnotation.')
        dtype = np.uint8 if 0 <= ignore <= 255 else np.int64
        return np.full(shape, ignore, dtype)

    def transform(self, results: dict) -> dict:
        """Read, decode, reduce and check the mask."""
        path = results.get('seg_map_path')
        reduce = self.reduce_zero_label
        if reduce is None:
            reduce = bool(results.get('reduce_zero_label', False))
        ignore = self.ignore_index
        if ignore is None:
            ignore = results.get('ignore_index', 255)
        if path is None:
            # an image kept without a mask (allow_missing_masks): every
            # pixel is ignored by the loss and left out by the metric
            return store_seg_map(results,
                                 self._ignore_map(results, ignore), reduce)
        palette = (self.rgb_palette if self.rgb_palette is not None else
                   results.get('palette'))
        seg = self._read(path, palette).astype(np.int64)
        if reduce:
            seg = reduce_zero_label_map(seg)
        # the original size, also when the image was already resized
        img_hw = results.get('ori_shape')
        if img_hw is None and results.get('img') is not None:
            img_hw = results['img'].shape
        if img_hw is not None and tuple(img_hw[:2]) != seg.shape:
            raise ValueError(
                f'Mask {path} is {seg.shape[0]}x{seg.shape[1]} (HxW) but '
                f'image {results.get("img_path", "<unknown>")} is '
                f'{img_hw[0]}x{img_hw[1]}; image and mask must have '
                'the same size.')
        num_classes = self.num_classes
        if num_classes is None:
            num_classes = results.get('num_classes')
        seg = check_mask_values(
            seg, num_classes, ignore, f'Mask {path}',
            ', after reduce_zero_label' if reduce else '')
        return store_seg_map(results, seg, reduce)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'reduce_zero_label={self.reduce_zero_label}, '
                f'mask_format={self.mask_format!r}, '
                f'rgb_palette={self.rgb_palette}, '
                f'num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
