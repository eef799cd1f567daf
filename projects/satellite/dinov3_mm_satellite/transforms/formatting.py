"""Packing float multispectral images for a segmentor."""
from typing import Optional, Sequence

import numpy as np

from dinov3_mm.datasets.transforms import PackSegInputs, image_to_tensor
from dinov3_mm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackMultispectralSegInputs(PackSegInputs):
    """:class:`~dinov3_mm.datasets.transforms.PackSegInputs` for float
    ``(H, W, B)`` images of any band count.

    The core packer casts images to uint8 (the data preprocessor then
    normalises them); normalised multispectral floats must stay float, so
    ``inputs`` is a float32 ``(B, H, W)`` tensor. Mask and metainfo are
    packed as by the core packer.

    Required Keys:

    - img

    Optional Keys:

    - gt_seg_map, the ``meta_keys``

    Added Keys:

    - inputs (torch.float32 ``(B, H, W)``)
    - data_samples (``SegDataSample``)

    Args:
        num_channels (int, optional): Bands the model takes (its backbone's
            ``in_channels``); another count is an error naming the image,
            raised here rather than as a shape error inside the model.
        meta_keys (Sequence[str], optional): As the core packer's.
    """

    def __init__(self,
                 num_channels: Optional[int] = None,
                 meta_keys: Optional[Sequence[str]] = None) -> None:
        if meta_keys is None:
            super().__init__()
        else:
            super().__init__(meta_keys=meta_keys)
        self.num_channels = num_channels

    def transform(self, results: dict) -> dict:
        """Return ``dict(inputs=..., data_samples=...)``."""
        img = results['img']
        bands = img.shape[2] if img.ndim == 3 else 1
        if self.num_channels is not None and bands != self.num_channels:
            raise ValueError(
                f'{results.get("img_path", "<image>")} has {bands} band(s) '
                f'after the pipeline but the model takes in_channels='
                f'{self.num_channels}; make the band selection (SelectBands, '
                'NormalizeBands statistics) and the backbone in_channels '
                'agree.')
        # The parent builds the data sample; hand it a 1-pixel stand-in so
        # the image is not converted to uint8 for nothing.
        packed = super().transform(
            dict(results, img=np.zeros((1, 1, 1), np.uint8)))
        packed['inputs'] = image_to_tensor(
            np.asarray(img, dtype=np.float32))
        return packed
