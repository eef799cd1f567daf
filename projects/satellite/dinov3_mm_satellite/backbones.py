"""DINOv3 backbones for N-band imagery that load RGB-pretrained weights.

``MultispectralDINOv3ViT`` and ``MultispectralDINOv3ConvNeXt`` are the core
backbones with one difference: ``init_cfg=dict(type='Pretrained',
checkpoint=...)`` adapts the checkpoint's 3-channel stem kernel to
``in_channels`` bands (rule in :mod:`~dinov3_mm_satellite.patch_embed`)
instead of failing on the shape mismatch. Without a checkpoint the stem is
randomly initialised for ``in_channels`` bands, as in the core.
"""
from typing import Optional, Sequence

from mmengine.logging import print_log
from torch import nn

from dinov3_mm.models import DINOv3ConvNeXt, DINOv3ViT
from dinov3_mm.registry import MODELS
from .patch_embed import (adapt_patch_embed_weight, check_band_map,
                          default_band_map)


class MultispectralStemMixin:
    """Adds band-adapting pretrained loading to a DINOv3 backbone.

    Subclasses set :attr:`stem_weight_key` and :meth:`stem_conv`.
    """

    stem_weight_key: str = ''

    def __init__(self,
                 in_channels: int = 3,
                 rgb_band_indices: Optional[Sequence[Optional[int]]] = None,
                 rescale_stem: bool = True,
                 train_stem: bool = False,
                 **kwargs) -> None:
        super().__init__(in_channels=in_channels, **kwargs)
        self.rgb_band_indices = check_band_map(
            default_band_map(in_channels)
            if rgb_band_indices is None else rgb_band_indices, in_channels)
        self.rescale_stem = rescale_stem
        self.train_stem = train_stem
        self._freeze_stages()  # again, now that train_stem is known

    def stem_conv(self) -> nn.Conv2d:
        """The convolution whose input channels are the bands."""
        raise NotImplementedError

    def adapt_pretrained_state_dict(self, state_dict: dict) -> dict:
        """Give a 3-channel (RGB) stem kernel ``in_channels`` inputs.

        Called by the core checkpoint loader (``init_cfg`` Pretrained)
        before its shape checks; other keys and an already fitting stem are
        left alone.
        """
        key = self.stem_weight_key
        own = self.state_dict().get(key)
        src = state_dict.get(key)
        if own is None or src is None or src.shape == own.shape or \
                src.shape[0] != own.shape[0] or src.shape[2:] != own.shape[2:]:
            return state_dict
        print_log(
            f'{type(self).__name__}: stem adapted from {src.shape[1]} to '
            f'{self.in_channels} bands (RGB at bands '
            f'{self.rgb_band_indices}, rescale={self.rescale_stem})',
            logger='current')
        return dict(state_dict, **{key: adapt_patch_embed_weight(
            src, own.shape[1], self.rgb_band_indices,
            self.rescale_stem).to(own.dtype)})

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if getattr(self, 'train_stem', False):
            conv = self.stem_conv()
            conv.train(self.training)
            for param in conv.parameters():
                param.requires_grad = True


@MODELS.register_module()
class MultispectralDINOv3ViT(MultispectralStemMixin, DINOv3ViT):
    """:class:`~dinov3_mm.models.backbones.DINOv3ViT` for ``in_channels``
    bands, loading RGB checkpoints with an adapted patch embedding.

    Args:
        in_channels (int): Input bands. Defaults to 3.
        rgb_band_indices (Sequence[int | None], optional): Input band holding
            the pretrained R, G and B channel (None: absent). Defaults to
            bands 0, 1, 2.
        rescale_stem (bool): Multiply the adapted kernel by ``3 /
            in_channels``. Defaults to True.
        train_stem (bool): Keep the patch embedding trainable when
            ``frozen_stages`` freezes it (useful when its extra bands start
            from the averaged RGB kernel). Defaults to False.
        **kwargs: :class:`DINOv3ViT` arguments.
    """

    stem_weight_key = 'patch_embed.proj.weight'

    def stem_conv(self) -> nn.Conv2d:
        return self.patch_embed.proj


@MODELS.register_module()
class MultispectralDINOv3ConvNeXt(MultispectralStemMixin, DINOv3ConvNeXt):
    """:class:`~dinov3_mm.models.backbones.DINOv3ConvNeXt` for
    ``in_channels`` bands, loading RGB checkpoints with an adapted stem
    convolution (``downsample_layers.0.0``).

    Args: as :class:`MultispectralDINOv3ViT`, with
        :class:`DINOv3ConvNeXt` arguments in ``**kwargs``.
    """

    stem_weight_key = 'downsample_layers.0.0.weight'

    def stem_conv(self) -> nn.Conv2d:
        return self.downsample_layers[0][0]
