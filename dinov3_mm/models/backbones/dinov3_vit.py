"""DINOv3 Vision Transformer with the official module layout."""
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from dinov3_mm.registry import MODELS
from ..layers import (LayerScale, RopePositionEmbedding, SelfAttention,
                      build_ffn, swiglu_hidden_size)
from ..layers.ffn import SWIGLU_ALIGN
from . import hf_vit
from .base import DINOv3BackboneBase

# Settings shared by every released DINOv3 ViT (the official hub constructors).
_RELEASED = dict(
    patch_size=16,
    n_storage_tokens=4,
    layerscale_init=1e-5,
    mask_k_bias=True,
    qkv_bias=True,
    proj_bias=True,
    ffn_bias=True,
    norm_eps=1e-5,
    rope_base=100.0,
    untie_cls_and_patch_norms=False,
    untie_global_and_local_cls_norm=False,
)

ARCH_ZOO: Dict[str, dict] = {
    'small': dict(embed_dims=384, num_layers=12, num_heads=6, ffn_ratio=4.0,
                  ffn_type='mlp'),
    'small_plus': dict(embed_dims=384, num_layers=12, num_heads=6,
                       ffn_ratio=6.0, ffn_type='swiglu'),
    'base': dict(embed_dims=768, num_layers=12, num_heads=12, ffn_ratio=4.0,
                 ffn_type='mlp'),
    'large': dict(embed_dims=1024, num_layers=24, num_heads=16,
                  ffn_ratio=4.0, ffn_type='mlp'),
    'large_plus': dict(embed_dims=1024, num_layers=24, num_heads=16,
                       ffn_ratio=6.0, ffn_type='swiglu'),
    'huge_plus': dict(embed_dims=1280, num_layers=32, num_heads=20,
                      ffn_ratio=6.0, ffn_type='swiglu'),
    '7b': dict(embed_dims=4096, num_layers=40, num_heads=32, ffn_ratio=3.0,
               ffn_type='swiglu64', untie_global_and_local_cls_norm=True),
}
ARCH_ZOO = {name: {**_RELEASED, **cfg} for name, cfg in ARCH_ZOO.items()}
OUT_TYPES = ('raw', 'featmap', 'cls_token', 'cls_patch_avg')


class Block(nn.Module):
    """Pre-norm transformer block: attention and FFN, each with LayerScale.

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads.
        ffn_ratio (float): FFN hidden width over ``dim``.
        ffn_type (str): ``'mlp'`` or a SwiGLU variant.
        layerscale_init (float, optional): LayerScale init; None disables it.
        drop_path (float): Stochastic depth rate of this block.
        norm_eps (float): LayerNorm epsilon.
        qkv_bias, proj_bias, ffn_bias, mask_k_bias (bool): Bias switches.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 ffn_ratio: float,
                 ffn_type: str,
                 layerscale_init: Optional[float],
                 drop_path: float,
                 norm_eps: float,
                 qkv_bias: bool,
                 proj_bias: bool,
                 ffn_bias: bool,
                 mask_k_bias: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = SelfAttention(
            dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias,
            mask_k_bias=mask_k_bias)
        self.ls1 = (LayerScale(dim, layerscale_init)
                    if layerscale_init else nn.Identity())
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = build_ffn(ffn_type, dim, ffn_ratio, bias=ffn_bias)
        self.ls2 = (LayerScale(dim, layerscale_init)
                    if layerscale_init else nn.Identity())
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self,
                x: Tensor,
                rope: Optional[Tuple[Tensor, Tensor]] = None,
                inplace: bool = False) -> Tensor:
        """Apply the block; ``inplace`` updates ``x`` itself (no autograd)."""
        x = self._add_residual(x, self.attn(self.norm1(x), rope), self.ls1,
                               inplace)
        return self._add_residual(x, self.mlp(self.norm2(x)), self.ls2,
                                  inplace)

    def _add_residual(self, x: Tensor, branch: Tensor,
                      layer_scale: nn.Module, inplace: bool) -> Tensor:
        """``x + drop_path(layer_scale(branch))``, fused when nothing is dropped."""
        if isinstance(self.drop_path, nn.Identity) or not self.training:
            if isinstance(layer_scale, LayerScale):
                if inplace:
                    return x.addcmul_(branch, layer_scale.gamma)
                return torch.addcmul(x, branch, layer_scale.gamma)
            return x.add_(branch) if inplace else x + branch
        return x + self.drop_path(layer_scale(branch))


@MODELS.register_module()
class DINOv3ViT(DINOv3BackboneBase):
    """DINOv3 Vision Transformer.

    Module and parameter names follow the official ``DinoVisionTransformer``
    so official checkpoints load strictly; Hugging Face checkpoints are
    translated (see :meth:`state_dict_from_hf`).

    Args:
        arch (str | dict): ``'small'``, ``'small_plus'``, ``'base'``,
            ``'large'``, ``'large_plus'``, ``'huge_plus'``, ``'7b'`` or a
            custom dict (see :meth:`_complete_arch`). Defaults to ``'base'``.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (int | Sequence[int]): Blocks whose outputs are returned
            (negative counts from the end). Defaults to -1.
        out_type (str): ``'featmap'`` (B, C, h, w patch map), ``'cls_token'``
            (B, C), ``'cls_patch_avg'`` (B, 2C: class token and mean patch
            token, the official linear-probe input) or ``'raw'`` (B, N, C, all
            tokens). Defaults to ``'cls_token'``.
        norm_outputs (bool): Apply the final norm to every returned block
            output, like the official ``get_intermediate_layers(norm=True)``.
            Defaults to True.
        frozen_stages (int): Freeze the embeddings and the first
            ``frozen_stages`` blocks; ``num_layers`` also freezes the final
            norms (linear probing). -1 freezes nothing. Defaults to -1.
        drop_path_rate (float): Stochastic depth, increasing linearly to this
            value over the blocks. Defaults to 0.
        with_cp (bool): Gradient checkpointing of every block while training.
            Defaults to False.
        rope_shift_coords, rope_jitter_coords, rope_rescale_coords (float,
            optional): RoPE coordinate augmentations, applied only in training
            mode. Off by default (DINOv3 pretraining used rescale 2).
        rope_normalize_coords (str): ``'separate'`` (official), ``'min'`` or
            ``'max'``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)``
            loads official, Hugging Face or dinov3_mm weights.
    """

    arch_zoo = ARCH_ZOO
    arch_required_keys = ('embed_dims', 'num_layers', 'num_heads')

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 out_type: str = 'cls_token',
                 norm_outputs: bool = True,
                 frozen_stages: int = -1,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False,
                 rope_shift_coords: Optional[float] = None,
                 rope_jitter_coords: Optional[float] = None,
                 rope_rescale_coords: Optional[float] = None,
                 rope_normalize_coords: str = 'separate',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        s = self._init_arch(arch)
        self.embed_dims = s['embed_dims']
        self.num_layers = s['num_layers']
        self.num_heads = s['num_heads']
        self.patch_size = s['patch_size']
        self.n_storage_tokens = s['n_storage_tokens']
        self.in_channels = in_channels
        if out_type not in OUT_TYPES:
            raise ValueError(f'Unknown out_type {out_type!r}; expected one of '
                             f'{OUT_TYPES}.')
        self.out_type = out_type
        self.out_indices = self._normalise_indices(out_indices)
        self.norm_outputs = norm_outputs
        if not -1 <= frozen_stages <= self.num_layers:
            raise ValueError(f'frozen_stages must be in [-1, {self.num_layers}]'
                             f', got {frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp

        dim = self.embed_dims
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(
            in_channels, dim, kernel_size=self.patch_size,
            stride=self.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if self.n_storage_tokens > 0:
            self.storage_tokens = nn.Parameter(
                torch.zeros(1, self.n_storage_tokens, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.rope_embed = RopePositionEmbedding(
            dim,
            self.num_heads,
            base=s['rope_base'],
            normalize_coords=rope_normalize_coords,
            shift_coords=rope_shift_coords,
            jitter_coords=rope_jitter_coords,
            rescale_coords=rope_rescale_coords)
        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            Block(dim, self.num_heads, s['ffn_ratio'], s['ffn_type'],
                  s['layerscale_init'], dpr[i], s['norm_eps'], s['qkv_bias'],
                  s['proj_bias'], s['ffn_bias'], s['mask_k_bias'])
            for i in range(self.num_layers)
        ])
        self.norm = nn.LayerNorm(dim, eps=s['norm_eps'])
        self.cls_norm = (nn.LayerNorm(dim, eps=s['norm_eps'])
                         if s['untie_cls_and_patch_norms'] else None)
        self.local_cls_norm = (nn.LayerNorm(dim, eps=s['norm_eps'])
                               if s['untie_global_and_local_cls_norm'] else
                               None)
        self._init_random_weights()
        self._freeze_stages()

    # ------------------------------------------------------------------ setup
    @classmethod
    def _complete_arch(cls, arch: dict) -> dict:
        """Fill a custom arch with the released values; reject unknown keys.

        Missing optional keys take the released DINOv3 values (4 storage
        tokens, LayerScale 1e-5, ...) with a plain 4x MLP.
        """
        settings = dict(_RELEASED, ffn_ratio=4.0, ffn_type='mlp')
        valid = set(settings) | set(cls.arch_required_keys)
        unknown = sorted(set(arch) - valid)
        if unknown:
            raise ValueError(f'Unknown keys {unknown} in {cls.__name__} arch; '
                             f'valid keys are {sorted(valid)}.')
        settings.update(arch)
        return settings

    def _normalise_indices(self, out_indices) -> List[int]:
        indices = [out_indices] if isinstance(out_indices, int) else list(
            out_indices)
        result = []
        for i in indices:
            j = i + self.num_layers if i < 0 else i
            if not 0 <= j < self.num_layers:
                raise ValueError(f'out_indices entry {i} is out of range for '
                                 f'{self.num_layers} blocks.')
            result.append(j)
        return result

    def _init_random_weights(self) -> None:
        """Official initialisation (``init_weights_vit``)."""
        nn.init.normal_(self.cls_token, std=0.02)
        if self.n_storage_tokens > 0:
            nn.init.normal_(self.storage_tokens, std=0.02)
        nn.init.zeros_(self.mask_token)
        self.rope_embed.reset_parameters()
        proj = self.patch_embed.proj
        bound = (1 / (self.in_channels * self.patch_size**2))**0.5
        nn.init.uniform_(proj.weight, -bound, bound)
        nn.init.uniform_(proj.bias, -bound, bound)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.LayerNorm, LayerScale)):
                module.reset_parameters()
        for norm in (self.norm, self.cls_norm, self.local_cls_norm):
            if norm is not None:
                norm.reset_parameters()

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for param in (self.cls_token, self.mask_token,
                      getattr(self, 'storage_tokens', None)):
            if param is not None:
                param.requires_grad = False
        self._freeze(self.patch_embed)
        for block in self.blocks[:self.frozen_stages]:
            self._freeze(block)
        if self.frozen_stages == self.num_layers:
            for norm in (self.norm, self.cls_norm, self.local_cls_norm):
                self._freeze(norm)

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise learning-rate decay.

        Embeddings get 0, block ``i`` gets ``i + 1`` and the final norms get
        ``num_layers + 1``.

        Args:
            param_name (str): Parameter name, e.g. ``'backbone.blocks.3.attn.qkv.weight'``.
            prefix (str): Prefix to strip first, e.g. ``'backbone.'``.

        Returns:
            tuple[int, int]: The layer id and the number of layer ids.
        """
        num_ids = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_ids - 1, num_ids
        name = param_name[len(prefix):]
        if name.split('.')[0] in ('cls_token', 'storage_tokens', 'mask_token',
                                  'patch_embed', 'rope_embed'):
            return 0, num_ids
        match = re.match(r'blocks\.(\d+)\.', name)
        if match:
            return int(match.group(1)) + 1, num_ids
        return num_ids - 1, num_ids

    # ---------------------------------------------------------------- forward
    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'DINOv3ViT expects (B, {self.in_channels}, H, W) input, got '
                f'shape {tuple(x.shape)}.')
        H, W = x.shape[-2:]
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(
                f'Input size {H}x{W} is not a multiple of the patch size '
                f'{self.patch_size}; resize the image or pad it (the data '
                f'preprocessor pads with pad_size_divisor={self.patch_size}).')

    def prepare_tokens_with_masks(
            self,
            x: Tensor,
            masks: Optional[Tensor] = None) -> Tuple[Tensor, Tuple[int, int]]:
        """Embed patches and prepend the class and storage tokens.

        Args:
            x (Tensor): (B, C, H, W) images.
            masks (Tensor, optional): (B, h*w) bool, True where a patch is
                replaced by the mask token.

        Returns:
            tuple: Tokens (B, 1 + storage + h*w, C) and the grid ``(h, w)``.
        """
        self._check_input(x)
        x = self.patch_embed.proj(x)
        H, W = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        if masks is not None:
            x = torch.where(masks.unsqueeze(-1),
                            self.mask_token.to(x.dtype).unsqueeze(0), x)
            cls_token = self.cls_token
        else:
            # keeps mask_token in the graph so DDP sees a gradient for it
            cls_token = self.cls_token + 0 * self.mask_token
        prefix = [cls_token.expand(x.shape[0], -1, -1)]
        if self.n_storage_tokens > 0:
            prefix.append(self.storage_tokens.expand(x.shape[0], -1, -1))
        return torch.cat(prefix + [x], dim=1), (H, W)

    def _run_blocks(self, x: Tensor, indices: Sequence[int],
                    grid: Tuple[int, int]) -> List[Tensor]:
        """Run the blocks up to the last wanted one; outputs in ``indices`` order.

        Without autograd the residual stream is updated in place, which
        spares a large allocation per residual; ``x`` must then be a tensor
        this call owns (the output of :meth:`prepare_tokens_with_masks`).
        """
        rope = self.rope_embed(*grid)
        inplace = not torch.is_grad_enabled()
        last, wanted, kept = max(indices), set(indices), {}
        for i, block in enumerate(self.blocks[:last + 1]):
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, rope, use_reentrant=False)
            else:
                x = block(x, rope, inplace=inplace)
            if i in wanted:
                kept[i] = x.clone() if inplace and i != last else x
        return [kept[i] for i in indices]

    def _norm_tokens(self, x: Tensor, cls_norm: Optional[nn.Module] = None) -> Tensor:
        """Final norm of a token sequence, with the untied class norm if any."""
        if cls_norm is None:
            cls_norm = self.cls_norm
        if cls_norm is None:
            return self.norm(x)
        n_prefix = self.n_storage_tokens + 1
        return torch.cat(
            (cls_norm(x[:, :n_prefix]), self.norm(x[:, n_prefix:])), dim=1)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Return one tensor per ``out_indices`` entry, shaped by ``out_type``."""
        tokens, grid = self.prepare_tokens_with_masks(x)
        outputs = self._run_blocks(tokens, self.out_indices, grid)
        n_prefix = self.n_storage_tokens + 1
        results = []
        for out in outputs:
            if self.norm_outputs:
                out = self._norm_tokens(out)
            if self.out_type == 'raw':
                results.append(out)
            elif self.out_type == 'cls_token':
                results.append(out[:, 0])
            elif self.out_type == 'cls_patch_avg':
                results.append(
                    torch.cat((out[:, 0], out[:, n_prefix:].mean(1)), dim=-1))
            else:
                patches = out[:, n_prefix:]
                results.append(
                    patches.transpose(1, 2).reshape(x.shape[0], -1, *grid))
        return tuple(results)

    def forward_features(
        self,
        x: Union[Tensor, List[Tensor]],
        masks: Optional[Union[Tensor, List[Optional[Tensor]]]] = None
    ) -> Union[Dict[str, Tensor], List[Dict[str, Tensor]]]:
        """Official ``forward_features``: normalised class, storage and patch tokens.

        Args:
            x (Tensor | list[Tensor]): Images, or a list of image batches
                (e.g. global and local crops).
            masks (Tensor | list, optional): Patch masks per batch.

        Returns:
            dict | list[dict]: ``x_norm_clstoken``, ``x_storage_tokens``,
            ``x_norm_patchtokens``, ``x_prenorm`` and ``masks``.
        """
        if isinstance(x, Tensor):
            return self._features(x, masks, local_crops=False)
        masks = masks if masks is not None else [None] * len(x)
        # The official code norms the class token of the second list entry
        # (the local crops) with ``local_cls_norm`` while training.
        return [
            self._features(xi, mi, local_crops=(i == 1))
            for i, (xi, mi) in enumerate(zip(x, masks))
        ]

    def _features(self, x: Tensor, masks: Optional[Tensor],
                  local_crops: bool) -> Dict[str, Tensor]:
        tokens, grid = self.prepare_tokens_with_masks(x, masks)
        out = self._run_blocks(tokens, [self.num_layers - 1], grid)[0]
        n_prefix = self.n_storage_tokens + 1
        cls_norm = None
        if local_crops and self.training and self.local_cls_norm is not None:
            cls_norm = self.local_cls_norm
        normed = self._norm_tokens(out, cls_norm)
        return {
            'x_norm_clstoken': normed[:, 0],
            'x_storage_tokens': normed[:, 1:n_prefix],
            'x_norm_patchtokens': normed[:, n_prefix:],
            'x_prenorm': out,
            'masks': masks,
        }

    def get_intermediate_layers(
        self,
        x: Tensor,
        n: Union[int, Sequence[int]] = 1,
        reshape: bool = False,
        return_class_token: bool = False,
        return_extra_tokens: bool = False,
        norm: bool = True,
    ) -> tuple:
        """Official ``get_intermediate_layers``.

        Args:
            x (Tensor): (B, C, H, W) images.
            n (int | Sequence[int]): The last ``n`` blocks, or block indices.
            reshape (bool): Return patch tokens as (B, C, h, w) maps.
            return_class_token (bool): Also return the class token.
            return_extra_tokens (bool): Also return the storage tokens.
            norm (bool): Apply the final norm(s).

        Returns:
            tuple: Per block, the patch tokens, or a tuple of (patches,
            [class token], [storage tokens]).
        """
        indices = (list(range(self.num_layers - n, self.num_layers))
                   if isinstance(n, int) else self._normalise_indices(n))
        tokens, grid = self.prepare_tokens_with_masks(x)
        outputs = self._run_blocks(tokens, indices, grid)
        if norm:
            outputs = [self._norm_tokens(out) for out in outputs]
        n_prefix = self.n_storage_tokens + 1
        class_tokens = [out[:, 0] for out in outputs]
        extra_tokens = [out[:, 1:n_prefix] for out in outputs]
        patches = [out[:, n_prefix:] for out in outputs]
        if reshape:
            patches = [
                p.reshape(x.shape[0], *grid, -1).permute(0, 3, 1,
                                                         2).contiguous()
                for p in patches
            ]
        parts = [patches]
        if return_class_token:
            parts.append(class_tokens)
        if return_extra_tokens:
            parts.append(extra_tokens)
        if len(parts) == 1:
            return tuple(patches)
        return tuple(zip(*parts))

    # ---------------------------------------------------- Hugging Face layout
    def hf_config(self) -> dict:
        """``config.json`` of the equivalent ``transformers.DINOv3ViTModel``."""
        return hf_vit.hf_config(self)

    @classmethod
    def arch_from_hf_config(cls, config: dict) -> Union[str, dict]:
        """The arch (a zoo name when one matches) of a HF ``config.json``.

        Args:
            config (dict): Parsed ``config.json`` of a ``dinov3_vit`` model.
        """
        return hf_vit.arch_from_hf_config(config, cls.arch_zoo)

    @classmethod
    def arch_from_state_dict(cls,
                             state_dict: Dict[str, Tensor]) -> Union[str, dict]:
        """The arch (a zoo name when one matches) of an official state dict.

        The head count comes from the RoPE periods (``head_dim / 4`` of them).

        Args:
            state_dict (dict): Official / dinov3_mm backbone keys.
        """
        try:
            dim = state_dict['cls_token'].shape[-1]
            head_dim = 4 * state_dict['rope_embed.periods'].numel()
        except KeyError as exc:
            raise ValueError(f'Not a DINOv3 ViT state dict: no {exc}.') from exc
        depth = 1 + max(
            int(k.split('.')[1]) for k in state_dict if k.startswith('blocks.'))
        swiglu = 'blocks.0.mlp.w1.weight' in state_dict
        hidden = state_dict['blocks.0.mlp.w1.weight' if swiglu else
                            'blocks.0.mlp.fc1.weight'].shape[0]
        storage = state_dict.get('storage_tokens')
        arch = dict(
            embed_dims=dim,
            num_layers=depth,
            num_heads=dim // head_dim,
            ffn_ratio=hidden * 1.5 / dim if swiglu else hidden / dim,
            ffn_type='swiglu' if swiglu else 'mlp',
            patch_size=state_dict['patch_embed.proj.weight'].shape[-1],
            n_storage_tokens=0 if storage is None else storage.shape[1],
            mask_k_bias='blocks.0.attn.qkv.bias_mask' in state_dict,
            qkv_bias='blocks.0.attn.qkv.bias' in state_dict,
            untie_cls_and_patch_norms='cls_norm.weight' in state_dict,
            untie_global_and_local_cls_norm='local_cls_norm.weight' in
            state_dict,
        )
        if 'blocks.0.ls1.gamma' not in state_dict:
            arch['layerscale_init'] = None
        for name, zoo in cls.arch_zoo.items():
            zoo_hidden = int(zoo['embed_dims'] * zoo['ffn_ratio'])
            if zoo['ffn_type'] != 'mlp':
                align = SWIGLU_ALIGN[zoo['ffn_type']]
                zoo_hidden = swiglu_hidden_size(zoo_hidden, align)
            same = all(zoo[k] == arch[k] for k in arch
                       if k not in ('ffn_ratio', 'ffn_type'))
            if same and zoo_hidden == hidden and (zoo['ffn_type'] == 'mlp') != swiglu:
                return name
        return arch

    def state_dict_from_hf(
            self, state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Translate a Hugging Face ``DINOv3ViTModel`` state dict to ours.

        See :func:`~dinov3_mm.models.backbones.hf_vit.state_dict_from_hf`.
        """
        return hf_vit.state_dict_from_hf(self, state_dict)

    def state_dict_to_hf(
            self, state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Translate our state dict to the Hub layout of ``DINOv3ViTModel``.

        See :func:`~dinov3_mm.models.backbones.hf_vit.state_dict_to_hf`.
        """
        return hf_vit.state_dict_to_hf(self, state_dict)


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Settings of a :class:`DINOv3ViT` arch name or dict.

    See :meth:`DINOv3ViT.resolve_arch`.
    """
    return DINOv3ViT.resolve_arch(arch)
