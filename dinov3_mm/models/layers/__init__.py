"""Building blocks of the DINOv3 backbones."""
from .attention import LinearKMaskedBias, SelfAttention, apply_rope
from .depthwise_conv import DepthwiseConv2d
from .linear import Linear, linear
from .ffn import Mlp, SwiGLUFFN, build_ffn, swiglu_hidden_size
from .layer_scale import LayerScale
from .ms_deform_attn import (MSDeformAttn, multi_scale_deformable_attention,
                             normalize_spatial_shapes)
from .rope import RopePositionEmbedding

__all__ = [
    'LinearKMaskedBias', 'SelfAttention', 'apply_rope', 'DepthwiseConv2d',
    'Linear', 'linear',
    'Mlp', 'SwiGLUFFN',
    'build_ffn', 'swiglu_hidden_size', 'LayerScale', 'RopePositionEmbedding',
    'MSDeformAttn', 'multi_scale_deformable_attention',
    'normalize_spatial_shapes'
]
