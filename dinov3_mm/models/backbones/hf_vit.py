"""Hugging Face ``DINOv3ViTModel`` layout of :class:`DINOv3ViT` weights.

Translates state dicts between our (the official) key names and those of
``transformers``' ``DINOv3ViTModel``, and its ``config.json`` to and from our
arch settings. The functions read what they need from the backbone instance
they are given (arch settings, depth, buffers HF does not store), so this
module does not import the backbone.
"""
import re
from typing import Dict, Union

import torch
from torch import Tensor, nn

from ..layers import swiglu_hidden_size

HF_MODEL_TYPE = 'dinov3_vit'

#: HF block key -> our block key, shared by every FFN type.
BLOCK_KEYS = {
    'norm1.weight': 'norm1.weight',
    'norm1.bias': 'norm1.bias',
    'norm2.weight': 'norm2.weight',
    'norm2.bias': 'norm2.bias',
    'attention.o_proj.weight': 'attn.proj.weight',
    'attention.o_proj.bias': 'attn.proj.bias',
    'layer_scale1.lambda1': 'ls1.gamma',
    'layer_scale2.lambda1': 'ls2.gamma',
}
#: HF FFN key -> ours, for the plain MLP.
MLP_KEYS = {
    'mlp.up_proj.weight': 'mlp.fc1.weight',
    'mlp.up_proj.bias': 'mlp.fc1.bias',
    'mlp.down_proj.weight': 'mlp.fc2.weight',
    'mlp.down_proj.bias': 'mlp.fc2.bias',
}
#: HF FFN key -> ours, for SwiGLU.
SWIGLU_KEYS = {
    'mlp.gate_proj.weight': 'mlp.w1.weight',
    'mlp.gate_proj.bias': 'mlp.w1.bias',
    'mlp.up_proj.weight': 'mlp.w2.weight',
    'mlp.up_proj.bias': 'mlp.w2.bias',
    'mlp.down_proj.weight': 'mlp.w3.weight',
    'mlp.down_proj.bias': 'mlp.w3.bias',
}
#: HF embedding / final-norm key -> ours.
EMBEDDING_KEYS = {
    'embeddings.cls_token': 'cls_token',
    'embeddings.register_tokens': 'storage_tokens',
    'embeddings.patch_embeddings.weight': 'patch_embed.proj.weight',
    'embeddings.patch_embeddings.bias': 'patch_embed.proj.bias',
    'norm.weight': 'norm.weight',
    'norm.bias': 'norm.bias',
}


def _block_keys(arch_settings: dict) -> Dict[str, str]:
    ffn = MLP_KEYS if arch_settings['ffn_type'] == 'mlp' else SWIGLU_KEYS
    return {**BLOCK_KEYS, **ffn}


def state_dict_from_hf(backbone: nn.Module,
                       state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Translate a Hugging Face ``DINOv3ViTModel`` state dict to ours.

    Keys may carry the transformers-v5 ``model.`` prefix. Entries HF does not
    store are filled from ``backbone``: the RoPE periods, the key-bias mask, a
    zero key bias, and ``local_cls_norm`` (a copy of the final norm; it is
    only used for local crops in self-supervised training).

    Args:
        backbone (nn.Module): The :class:`DINOv3ViT` the weights are for.
        state_dict (dict[str, Tensor]): The HF state dict.

    Returns:
        dict[str, Tensor]: Our state dict; keys that match no rule are kept
        unchanged so that a strict load names them.
    """
    settings = backbone.arch_settings
    sd = {re.sub(r'^model\.(?=layer\.)', '', k): v
          for k, v in state_dict.items()}
    out: Dict[str, Tensor] = {}
    for src, dst in EMBEDDING_KEYS.items():
        if src in sd:
            out[dst] = sd.pop(src)
    if 'embeddings.mask_token' in sd:
        out['mask_token'] = sd.pop('embeddings.mask_token').reshape(1, -1)
    block_keys = _block_keys(settings)
    for i in range(backbone.num_layers):
        src, dst = f'layer.{i}.', f'blocks.{i}.'
        for hf_name, name in block_keys.items():
            if src + hf_name in sd:
                out[dst + name] = sd.pop(src + hf_name)
        qkv = [sd.pop(f'{src}attention.{p}_proj.weight', None) for p in 'qkv']
        if all(t is not None for t in qkv):
            out[dst + 'attn.qkv.weight'] = torch.cat(qkv)
        biases = [sd.pop(f'{src}attention.{p}_proj.bias', None)
                  for p in 'qkv']
        if settings['qkv_bias'] and biases[0] is not None:
            if biases[1] is None:
                biases[1] = torch.zeros_like(biases[0])
            out[dst + 'attn.qkv.bias'] = torch.cat(biases)
    own = backbone.state_dict()
    for key in own:
        if key.endswith('bias_mask') or key == 'rope_embed.periods':
            out[key] = own[key].clone()
    if backbone.local_cls_norm is not None and 'norm.weight' in out:
        out['local_cls_norm.weight'] = out['norm.weight'].clone()
        out['local_cls_norm.bias'] = out['norm.bias'].clone()
    out.update(sd)  # leftovers surface as unexpected keys
    return out


def state_dict_to_hf(backbone: nn.Module,
                     state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Translate our state dict to the Hub layout of ``DINOv3ViTModel``.

    The key bias (masked to zero) and derived buffers are dropped, as is
    ``local_cls_norm``, which inference never uses.

    Args:
        backbone (nn.Module): The :class:`DINOv3ViT` the weights are for.
        state_dict (dict[str, Tensor]): Our state dict.

    Returns:
        dict[str, Tensor]: Contiguous tensors under HF key names.

    Raises:
        ValueError: The weights have an untied class norm, which HF lacks.
    """
    if any(k.startswith('cls_norm.') for k in state_dict):
        raise ValueError('Hugging Face DINOv3ViTModel has no untied class '
                         'norm; this checkpoint cannot be expressed in it.')
    settings = backbone.arch_settings
    sd = dict(state_dict)
    out: Dict[str, Tensor] = {
        src: sd[dst]
        for src, dst in EMBEDDING_KEYS.items() if dst != 'storage_tokens'
    }
    out['embeddings.mask_token'] = sd['mask_token'].reshape(1, 1, -1)
    if 'storage_tokens' in sd:
        out['embeddings.register_tokens'] = sd['storage_tokens']
    block_keys = _block_keys(settings)
    for i in range(backbone.num_layers):
        src, dst = f'blocks.{i}.', f'layer.{i}.'
        for hf_name, name in block_keys.items():
            if src + name in sd:
                out[dst + hf_name] = sd[src + name]
        if not settings['layerscale_init']:
            for j in (1, 2):
                out[f'{dst}layer_scale{j}.lambda1'] = torch.ones(
                    backbone.embed_dims)
        for p, t in zip('qkv', sd[src + 'attn.qkv.weight'].chunk(3)):
            out[f'{dst}attention.{p}_proj.weight'] = t
        if src + 'attn.qkv.bias' in sd:
            keep = 'qv' if settings['mask_k_bias'] else 'qkv'
            for p, t in zip('qkv', sd[src + 'attn.qkv.bias'].chunk(3)):
                if p in keep:
                    out[f'{dst}attention.{p}_proj.bias'] = t
    return {k: v.contiguous() for k, v in out.items()}


def hf_config(backbone: nn.Module) -> dict:
    """``config.json`` of the ``DINOv3ViTModel`` equivalent to ``backbone``.

    Args:
        backbone (nn.Module): A :class:`DINOv3ViT`.

    Raises:
        ValueError: The backbone has an untied class norm, which HF lacks.
    """
    s = backbone.arch_settings
    if backbone.cls_norm is not None:
        raise ValueError('Hugging Face DINOv3ViTModel has no untied class '
                         'norm (untie_cls_and_patch_norms=True).')
    gated = s['ffn_type'] != 'mlp'
    hidden = int(backbone.embed_dims * s['ffn_ratio'])
    if gated:
        hidden = backbone.blocks[0].mlp.w1.out_features
    rope = backbone.rope_embed
    return dict(
        model_type=HF_MODEL_TYPE,
        architectures=['DINOv3ViTModel'],
        patch_size=backbone.patch_size,
        hidden_size=backbone.embed_dims,
        intermediate_size=hidden,
        num_hidden_layers=backbone.num_layers,
        num_attention_heads=backbone.num_heads,
        hidden_act='silu' if gated else 'gelu',
        layer_norm_eps=s['norm_eps'],
        rope_theta=s['rope_base'],
        image_size=224,
        num_channels=backbone.in_channels,
        query_bias=s['qkv_bias'],
        key_bias=s['qkv_bias'] and not s['mask_k_bias'],
        value_bias=s['qkv_bias'],
        proj_bias=s['proj_bias'],
        mlp_bias=s['ffn_bias'],
        layerscale_value=s['layerscale_init'] or 1.0,
        use_gated_mlp=gated,
        num_register_tokens=backbone.n_storage_tokens,
        pos_embed_shift=rope.shift_coords,
        pos_embed_jitter=rope.jitter_coords,
        pos_embed_rescale=rope.rescale_coords,
    )


def arch_from_hf_config(config: dict,
                        arch_zoo: Dict[str, dict]) -> Union[str, dict]:
    """The arch (a zoo name when one matches) of a HF ``config.json``.

    Args:
        config (dict): Parsed ``config.json`` of a ``dinov3_vit`` model.
        arch_zoo (dict[str, dict]): Named archs to match, e.g.
            ``DINOv3ViT.arch_zoo``.

    Raises:
        ValueError: A SwiGLU width the official rounding cannot produce.
    """
    dim = config['hidden_size']
    hidden = config['intermediate_size']
    gated = config.get('use_gated_mlp', False)
    ratio = hidden * 1.5 / dim if gated else hidden / dim
    ffn_type = 'swiglu' if gated else 'mlp'
    if gated and swiglu_hidden_size(int(dim * ratio)) != hidden:
        raise ValueError(f'Cannot express SwiGLU width {hidden} for dim '
                         f'{dim} with the official rounding.')
    arch = dict(
        embed_dims=dim,
        num_layers=config['num_hidden_layers'],
        num_heads=config['num_attention_heads'],
        ffn_ratio=ratio,
        ffn_type=ffn_type,
        patch_size=config.get('patch_size', 16),
        n_storage_tokens=config.get('num_register_tokens', 0),
        layerscale_init=config.get('layerscale_value', 1.0),
        mask_k_bias=(config.get('query_bias', True)
                     and not config.get('key_bias', False)),
        qkv_bias=config.get('query_bias', True),
        proj_bias=config.get('proj_bias', True),
        ffn_bias=config.get('mlp_bias', True),
        norm_eps=config.get('layer_norm_eps', 1e-5),
        rope_base=config.get('rope_theta', 100.0),
    )
    for name, zoo in arch_zoo.items():
        same = all(zoo[k] == v for k, v in arch.items()
                   if k not in ('ffn_type', 'layerscale_init'))
        if same and zoo['ffn_type'].startswith(ffn_type):
            return name
    return arch
