"""Building blocks of the DINOv3 backbones."""
from .attention import LinearKMaskedBias, SelfAttention, apply_rope
from .linear import Linear, linear
from .ffn import Mlp, SwiGLUFFN, build_ffn, swiglu_hidden_size
from .layer_scale import LayerScale
from .rope import RopePositionEmbedding

__all__ = [
    'LinearKMaskedBias', 'SelfAttention', 'apply_rope', 'Linear', 'linear',
    'Mlp', 'SwiGLUFFN',
    'build_ffn', 'swiglu_hidden_size', 'LayerScale', 'RopePositionEmbedding'
]
