"""Batching of detection inputs: normalise and pad images."""
from typing import Optional, Sequence

from mmengine.model import ImgDataPreprocessor

from dinov3_mm.registry import MODELS
from ..normalization import resolve_mean_std


@MODELS.register_module()
class DetDataPreprocessor(ImgDataPreprocessor):
    """Normalise and pad images (bottom/right) to a multiple of
    ``pad_size_divisor``; every sample records ``batch_input_shape``.

    Boxes and masks stay in packed-image pixels: bottom/right padding does
    not move them, and the detector pads masks itself where it needs to.

    Args:
        normalization (str, optional): ``'lvd1689m'`` or ``'sat493m'``;
            ignored when ``mean``/``std`` are given. Defaults to ``'lvd1689m'``.
        mean (Sequence[float], optional): Per-channel mean, 0-255 scale.
        std (Sequence[float], optional): Per-channel std, 0-255 scale.
        pad_size_divisor (int): Defaults to 32 (the coarsest stride of a
            4-level pyramid).
        pad_value (float): Image padding value after normalisation.
            Defaults to 0.
        to_rgb (bool): Swap channels (for BGR inputs). Defaults to False.
    """

    def __init__(self,
                 normalization: Optional[str] = 'lvd1689m',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pad_size_divisor: int = 32,
                 pad_value: float = 0,
                 to_rgb: bool = False):
        mean, std = resolve_mean_std(normalization, mean, std)
        super().__init__(mean=mean, std=std,
                         pad_size_divisor=pad_size_divisor,
                         pad_value=pad_value, bgr_to_rgb=to_rgb)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalised, padded NCHW inputs; samples get
        ``batch_input_shape``."""
        data = super().forward(data, training)
        for sample in data.get('data_samples') or []:
            sample.set_metainfo(
                dict(batch_input_shape=tuple(data['inputs'].shape[-2:])))
        return data
