"""Batching of segmentation inputs: normalise, pad images and masks."""
from typing import Optional, Sequence

import torch.nn.functional as F
from mmengine.model import ImgDataPreprocessor
from mmengine.structures import PixelData

from dinov3_mm.registry import MODELS
from ..normalization import resolve_mean_std


@MODELS.register_module()
class SegDataPreprocessor(ImgDataPreprocessor):
    """Normalise and pad images (bottom/right) to a multiple of the patch size.

    Ground-truth masks (``gt_sem_seg`` of mmseg's ``SegDataSample``) are padded
    to the batch size with ``seg_pad_value`` (the ignore index), and every
    sample records ``batch_input_shape``.

    Args:
        normalization (str, optional): ``'lvd1689m'`` or ``'sat493m'``;
            ignored when ``mean``/``std`` are given. Defaults to ``'lvd1689m'``.
        mean (Sequence[float], optional): Per-channel mean, 0-255 scale.
        std (Sequence[float], optional): Per-channel std, 0-255 scale.
        pad_size_divisor (int): Defaults to 16.
        pad_value (float): Image padding value after normalisation.
            Defaults to 0.
        seg_pad_value (int): Mask padding value. Defaults to 255.
        to_rgb (bool): Swap channels (for BGR inputs). Defaults to False.
    """

    def __init__(self,
                 normalization: Optional[str] = 'lvd1689m',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pad_size_divisor: int = 16,
                 pad_value: float = 0,
                 seg_pad_value: int = 255,
                 to_rgb: bool = False):
        mean, std = resolve_mean_std(normalization, mean, std)
        super().__init__(
            mean=mean, std=std, pad_size_divisor=pad_size_divisor,
            pad_value=pad_value, bgr_to_rgb=to_rgb)
        self.seg_pad_value = seg_pad_value

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalised, padded NCHW inputs and masks padded to match."""
        data = super().forward(data, training)
        inputs, samples = data['inputs'], data.get('data_samples')
        for sample in samples or []:
            sample.set_metainfo(dict(batch_input_shape=inputs.shape[-2:]))
            # evaluation compares at the original size (as mmseg does)
            if not training or 'gt_sem_seg' not in sample:
                continue
            seg = sample.gt_sem_seg.data
            pad_h = inputs.shape[-2] - seg.shape[-2]
            pad_w = inputs.shape[-1] - seg.shape[-1]
            if pad_h < 0 or pad_w < 0:
                raise ValueError(
                    f'Mask {tuple(seg.shape[-2:])} of '
                    f"{sample.metainfo.get('seg_map_path', 'a sample')} is "
                    f'larger than its image {tuple(inputs.shape[-2:])}.')
            if pad_h or pad_w:
                sample.gt_sem_seg = PixelData(data=F.pad(
                    seg, (0, pad_w, 0, pad_h), value=self.seg_pad_value))
        return data
