"""Hugging Face ``DINOv3ConvNextModel`` layout of :class:`DINOv3ConvNeXt` weights.

The Hub layout holds ``stages.*`` and ``layer_norm.*`` at the top level;
transformers v5 holds the stages under ``model.`` at runtime. Both are read;
the Hub layout is written. This module does not import the backbone.
"""
import re
from typing import Dict, List, Tuple

from torch import Tensor, nn

HF_MODEL_TYPE = 'dinov3_convnext'
NUM_STAGES = 4

#: Our block module name -> HF's.
BLOCK_TO_HF = {
    'dwconv': 'depthwise_conv',
    'norm': 'layer_norm',
    'pwconv1': 'pointwise_conv1',
    'pwconv2': 'pointwise_conv2',
}
BLOCK_FROM_HF = {v: k for k, v in BLOCK_TO_HF.items()}


def state_dict_from_hf(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Translate a Hugging Face ``DINOv3ConvNextModel`` state dict.

    Accepts the Hub layout (``stages.0...``, ``layer_norm.weight``) and the
    transformers v5 runtime layout (``model.stages.0...``). HF's pooler is a
    parameter-free ``AdaptiveAvgPool2d``, so every HF key has an official
    counterpart and nothing is dropped; keys that match no rule are passed
    through unchanged so that a strict load names them. The final norm is
    written under both ``norm.*`` and ``norms.3.*``.

    Args:
        state_dict (dict[str, Tensor]): The HF state dict.

    Returns:
        dict[str, Tensor]: The state dict in the official layout.
    """
    out = {}
    for key, value in state_dict.items():
        name = key[len('model.'):] if key.startswith('model.') else key
        match = re.fullmatch(
            r'stages\.(\d+)\.downsample_layers\.(\d+)\.(\w+)', name)
        if match:
            out['downsample_layers.{}.{}.{}'.format(*match.groups())] = value
            continue
        match = re.fullmatch(r'stages\.(\d+)\.layers\.(\d+)\.(\w+)(\.\w+)?',
                             name)
        if match:
            stage, block, module, param = match.groups()
            module = BLOCK_FROM_HF.get(module, module)
            out[f'stages.{stage}.{block}.{module}{param or ""}'] = value
            continue
        match = re.fullmatch(r'layer_norm\.(weight|bias)', name)
        if match:
            out[f'norm.{match.group(1)}'] = value
            out[f'norms.{NUM_STAGES - 1}.{match.group(1)}'] = value
            continue
        out[key] = value
    return out


def state_dict_to_hf(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Translate an official-layout state dict to the HF Hub layout.

    The result is what ``DINOv3ConvNextModel.from_pretrained`` loads from
    ``model.safetensors``. ``norms.3.*`` (an alias of ``norm.*``) is dropped;
    a block without ``gamma`` (``layer_scale_init_value <= 0``) gets
    ``gamma = 1``, since HF blocks always scale.

    Args:
        state_dict (dict[str, Tensor]): Our (official-layout) state dict.

    Returns:
        dict[str, Tensor]: The state dict in the HF Hub layout.

    Raises:
        KeyError: On a key that is not part of the backbone.
    """
    out = {}
    alias = {}
    for key, value in state_dict.items():
        match = re.fullmatch(r'downsample_layers\.(\d+)\.(\d+)\.(\w+)', key)
        if match:
            out['stages.{}.downsample_layers.{}.{}'.format(
                *match.groups())] = value
            continue
        match = re.fullmatch(r'stages\.(\d+)\.(\d+)\.(\w+)(\.\w+)?', key)
        if match:
            stage, block, module, param = match.groups()
            module = BLOCK_TO_HF.get(module, module)
            out[f'stages.{stage}.layers.{block}.{module}{param or ""}'] = value
            if module == 'depthwise_conv' and param == '.weight':
                gamma = f'stages.{stage}.{block}.gamma'
                if gamma not in state_dict:
                    out[f'stages.{stage}.layers.{block}.gamma'] = \
                        value.new_ones(value.shape[0])
            continue
        match = re.fullmatch(r'norm\.(weight|bias)', key)
        if match:
            out[f'layer_norm.{match.group(1)}'] = value
            continue
        match = re.fullmatch(rf'norms\.{NUM_STAGES - 1}\.(weight|bias)', key)
        if match:
            alias[f'layer_norm.{match.group(1)}'] = value
            continue
        raise KeyError(
            f'{key!r} is not a DINOv3ConvNeXt parameter; strip any '
            'prefix such as "backbone." before converting.')
    for key, value in alias.items():
        out.setdefault(key, value)
    return out


def hf_config(backbone: nn.Module) -> dict:
    """The ``config.json`` of the ``DINOv3ConvNextModel`` equal to ``backbone``.

    Args:
        backbone (nn.Module): A :class:`DINOv3ConvNeXt`.

    Returns:
        dict: Keyword arguments accepted by
        ``transformers.DINOv3ConvNextConfig``.
    """
    return dict(
        model_type=HF_MODEL_TYPE,
        architectures=['DINOv3ConvNextModel'],
        num_channels=backbone.in_channels,
        hidden_sizes=list(backbone.embed_dims),
        depths=list(backbone.depths),
        hidden_act='gelu',
        initializer_range=0.02,
        layer_norm_eps=1e-6,
        layer_scale_init_value=float(backbone.layer_scale_init_value),
        drop_path_rate=float(backbone.drop_path_rate),
        image_size=224,
    )


def depths_and_dims_from_hf_config(
        config: dict) -> Tuple[List[int], List[int]]:
    """The stage depths and widths of a ``dinov3_convnext`` ``config.json``."""
    return list(config['depths']), list(config['hidden_sizes'])
