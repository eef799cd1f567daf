"""DINOv3 ConvNeXt backbone with the official module layout.

The parameter names are those of ``dinov3/models/convnext.py``, so the
official ``dinov3_convnext_*_pretrain_*.pth`` files load with
``load_state_dict(strict=True)``. Hugging Face checkpoints
(``facebook/dinov3-convnext-*``) are translated by
:mod:`~dinov3_mm.models.backbones.hf_convnext`.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from dinov3_mm.registry import MODELS
from ..layers import DepthwiseConv2d, Linear, linear
from . import hf_convnext
from .base import DINOv3BackboneBase

NUM_STAGES = hf_convnext.NUM_STAGES


def _same_values(a: Tensor, b: Tensor) -> bool:
    """Whether two state-dict entries hold equal values (meta: assumed)."""
    if a is b or a.is_meta or b.is_meta:
        return True
    return a.shape == b.shape and torch.equal(a, b.to(a.device, a.dtype))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor.

    Replaces the official ``LayerNorm(data_format='channels_first')``, with
    the same parameters (``weight``, ``bias``). The official module computes
    the statistics by hand; this one permutes to channels-last and calls
    ``F.layer_norm``, which agrees to float rounding, is faster and keeps its
    statistics in fp32 under autocast.

    Args:
        num_channels (int): Number of channels.
        eps (float): Added to the variance. Defaults to 1e-6.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7 conv, LayerNorm, MLP, layer scale.

    Parameter names match the official ``Block``: ``dwconv``, ``norm``,
    ``pwconv1``, ``pwconv2`` and ``gamma``.

    Args:
        dim (int): Number of channels.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial value of ``gamma``; no layer
            scale (and no ``gamma`` parameter) when <= 0. Defaults to 1e-6.
    """

    def __init__(self,
                 dim: int,
                 drop_path: float = 0.,
                 layer_scale_init_value: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = DepthwiseConv2d(dim, kernel_size=7)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = Linear(dim, 4 * dim)
        self.pwconv2 = Linear(4 * dim, dim)
        self.layer_scale_init_value = layer_scale_init_value
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim))
            if layer_scale_init_value > 0 else None)
        self.drop_path = (
            DropPath(drop_path) if drop_path > 0. else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.pwconv2(linear(self.norm(x), self.pwconv1, gelu=True))
        if self.gamma is not None:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)
        return shortcut + self.drop_path(x)


@MODELS.register_module()
class DINOv3ConvNeXt(DINOv3BackboneBase):
    """ConvNeXt backbone of DINOv3 (`A ConvNet for the 2020s
    <https://arxiv.org/abs/2201.03545>`_, distilled from the DINOv3 ViT-7B).

    Module and parameter names are the official ones. As in the official
    class, ``norms`` is a ``ModuleList`` of three ``nn.Identity`` followed by
    the final ``norm`` itself, so the state dict holds the final norm twice,
    as ``norm.*`` and ``norms.3.*`` (official checkpoints contain both). A
    load pre-hook fills either alias from the other when only one is given,
    and rejects a state dict in which the two differ.

    Outputs of :meth:`forward`, one per index of ``out_indices``, in
    increasing stage order:

    - ``'featmap'``: the NCHW output of the stage (strides 4, 8, 16, 32).
      With ``norm_out=True`` each map goes through ``norms[i]``, exactly as
      the official ``get_intermediate_layers(norm=True, reshape=True)`` used
      by the DINOv3 dense evaluations: stage 3 gets the pretrained final
      LayerNorm (over channels, per position), stages 0-2 get the official
      identity. No new, untrained norm layers are added, so pretrained
      checkpoints keep loading strictly; a decode head that wants normalised
      shallow features should bring its own norms.
    - ``'cls_token'``: the global average of the stage output, passed through
      ``norms[i]`` when ``norm_out`` is True. For stage 3 with ``norm_out``
      this equals the official ``x_norm_clstoken``.

    :meth:`forward` stops after the deepest stage in ``out_indices``; the
    later stages then take no part in the graph (with DDP, freeze them or use
    ``find_unused_parameters``).

    Layer ids for layer-wise learning-rate decay (:meth:`get_layer_depth`)
    follow mmpretrain's ConvNeXt: the stem (``downsample_layers.0``) is 0,
    stage 0 is 1, stage 1 and ``downsample_layers.1`` are 2, stage 2 is cut
    into groups of 3 blocks with ids 3, 4, ... (``downsample_layers.2`` is
    3), stage 3 and ``downsample_layers.3`` share the last id ``L = 3 +
    ceil(depths[2] / 3)``, the final norm is ``L + 1`` and anything outside
    the backbone is ``L + 1`` too; the number of ids is ``L + 2`` (14 for
    small/base/large, 8 for tiny).

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'`` or ``'large'``,
            or a dict with ``depths`` and ``dims`` (4 ints each).
            Defaults to ``'tiny'``.
        in_channels (int): Number of input channels. Defaults to 3.
        out_indices (Sequence[int] | int): Stages (0-3, negatives count from
            the end) whose outputs :meth:`forward` returns.
            Defaults to ``(3, )``.
        out_type (str): ``'featmap'`` or ``'cls_token'``, see above.
            Defaults to ``'featmap'``.
        frozen_stages (int): Freeze (``requires_grad=False``, eval mode)
            ``downsample_layers[i]`` and ``stages[i]`` for
            ``i <= frozen_stages``; ``3`` also freezes the final norm, i.e.
            the whole backbone.
            -1 freezes nothing. Defaults to -1.
        drop_path_rate (float): Stochastic depth rate, increasing linearly
            over all blocks from 0. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale; <= 0 disables
            it. Defaults to 1e-6 (the value of the released models).
        with_cp (bool): Gradient checkpointing of every block during training
            (non-reentrant). Defaults to False.
        norm_out (bool): Apply ``norms[i]`` to the outputs of
            :meth:`forward`. Defaults to True.
        patch_size (int, optional): As in the official class: when set,
            :meth:`get_intermediate_layers` resizes the feature maps to those
            of a ViT with this patch size. :meth:`forward` is unaffected.
            Defaults to None.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            to load weights; None for the official random init.
            Defaults to None.
    """

    arch_zoo: Dict[str, dict] = {
        'tiny': dict(depths=[3, 3, 9, 3], dims=[96, 192, 384, 768]),
        'small': dict(depths=[3, 3, 27, 3], dims=[96, 192, 384, 768]),
        'base': dict(depths=[3, 3, 27, 3], dims=[128, 256, 512, 1024]),
        'large': dict(depths=[3, 3, 27, 3], dims=[192, 384, 768, 1536]),
    }
    arch_required_keys = ('depths', 'dims')
    OUT_TYPES = ('featmap', 'cls_token')

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 out_indices: Union[Sequence[int], int] = (3, ),
                 out_type: str = 'featmap',
                 frozen_stages: int = -1,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 with_cp: bool = False,
                 norm_out: bool = True,
                 patch_size: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._init_arch(arch)
        depths = list(self.arch_settings['depths'])
        dims = list(self.arch_settings['dims'])
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'out_type must be one of {self.OUT_TYPES}, '
                             f'got {out_type!r}.')
        if not -1 <= frozen_stages < NUM_STAGES:
            raise ValueError(f'frozen_stages must be in [-1, {NUM_STAGES - 1}]'
                             f', got {frozen_stages}.')
        self.depths = depths
        self.in_channels = in_channels
        self.out_indices = self._parse_indices(out_indices, 'out_indices')
        self.out_type = out_type
        self.frozen_stages = frozen_stages
        self.drop_path_rate = drop_path_rate
        self.layer_scale_init_value = layer_scale_init_value
        self.with_cp = with_cp
        self.norm_out = norm_out

        self.downsample_layers = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4),
                LayerNorm2d(dims[0], eps=1e-6))
        ])
        for i in range(NUM_STAGES - 1):
            self.downsample_layers.append(
                nn.Sequential(
                    LayerNorm2d(dims[i], eps=1e-6),
                    nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))

        dp_rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        cur = 0
        for i in range(NUM_STAGES):
            self.stages.append(
                nn.Sequential(*[
                    ConvNeXtBlock(
                        dims[i],
                        drop_path=dp_rates[cur + j],
                        layer_scale_init_value=layer_scale_init_value)
                    for j in range(depths[i])
                ]))
            cur += depths[i]

        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.norms = nn.ModuleList(
            [nn.Identity() for _ in range(NUM_STAGES - 1)])
        self.norms.append(self.norm)
        self.register_load_state_dict_pre_hook(self._fill_norm_alias)

        self.embed_dim = dims[-1]
        self.embed_dims = dims
        self.n_blocks = NUM_STAGES
        self.chunked_blocks = False
        self.n_storage_tokens = 0
        self.patch_size = patch_size
        self.input_pad_size = 4

        self._init_random_weights()
        self._freeze_stages()

    @classmethod
    def _complete_arch(cls, arch: dict) -> dict:
        """Keep ``depths`` and ``dims`` of a custom arch, 4 entries each."""
        for key in cls.arch_required_keys:
            if len(arch[key]) != NUM_STAGES:
                raise ValueError(f'arch[{key!r}] must have {NUM_STAGES} '
                                 f'entries, got {list(arch[key])}.')
        return {k: list(arch[k]) for k in cls.arch_required_keys}

    @staticmethod
    def _parse_indices(indices: Union[Sequence[int], int],
                       name: str) -> Tuple[int, ...]:
        if isinstance(indices, int):
            indices = [indices]
        result = set()
        for index in indices:
            if not -NUM_STAGES <= index < NUM_STAGES:
                raise ValueError(
                    f'{name} must be stage indices in [-{NUM_STAGES}, '
                    f'{NUM_STAGES - 1}], got {index}.')
            result.add(index % NUM_STAGES)
        if not result:
            raise ValueError(f'{name} must not be empty.')
        return tuple(sorted(result))

    @classmethod
    def arch_from_state_dict(cls, state_dict: Dict[str, Tensor]) -> Union[str, dict]:
        """The arch (a zoo name when one matches) of an official state dict."""
        try:
            dims = [
                state_dict[f'stages.{i}.0.dwconv.weight'].shape[0]
                for i in range(NUM_STAGES)
            ]
        except KeyError as exc:
            raise ValueError(
                f'Not a DINOv3 ConvNeXt state dict: no {exc}.') from exc
        depths = [
            len({k.split('.')[2] for k in state_dict
                 if k.startswith(f'stages.{i}.')}) for i in range(NUM_STAGES)
        ]
        return cls._match_zoo(depths, dims)

    @classmethod
    def arch_from_hf_config(cls, config: dict) -> Union[str, dict]:
        """The arch of a ``dinov3_convnext`` ``config.json``."""
        return cls._match_zoo(
            *hf_convnext.depths_and_dims_from_hf_config(config))

    @classmethod
    def _match_zoo(cls, depths: List[int], dims: List[int]) -> Union[str, dict]:
        for name, zoo in cls.arch_zoo.items():
            if zoo['depths'] == depths and zoo['dims'] == dims:
                return name
        return dict(depths=depths, dims=dims)

    @staticmethod
    def _fill_norm_alias(module: nn.Module, state_dict: dict, prefix: str,
                         *args) -> None:
        """Load pre-hook: complete the ``norm.*`` / ``norms.3.*`` pair."""
        alias = f'norms.{NUM_STAGES - 1}.'
        for name in ('weight', 'bias'):
            key, alias_key = prefix + 'norm.' + name, prefix + alias + name
            if key in state_dict and alias_key not in state_dict:
                state_dict[alias_key] = state_dict[key]
            elif alias_key in state_dict and key not in state_dict:
                state_dict[key] = state_dict[alias_key]
            elif key in state_dict and not _same_values(
                    state_dict[key], state_dict[alias_key]):
                raise ValueError(
                    f'{key!r} and {alias_key!r} are the same module in '
                    'DINOv3ConvNeXt but differ in the state dict.')

    def _init_random_weights(self) -> None:
        """The official init: truncated normal (std 0.02) for convs and
        linears with zero biases, LayerNorms to ones and zeros, ``gamma`` to
        ``layer_scale_init_value``."""
        for module in self.modules():
            if isinstance(module, nn.LayerNorm):
                module.reset_parameters()
            elif isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module,
                            ConvNeXtBlock) and module.gamma is not None:
                nn.init.constant_(module.gamma, module.layer_scale_init_value)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            self._freeze(self.downsample_layers[i])
            self._freeze(self.stages[i])
        if self.frozen_stages == NUM_STAGES - 1:
            self._freeze(self.norm)

    def _run_stage(self, i: int, x: Tensor) -> Tensor:
        x = self.downsample_layers[i](x)
        if self.with_cp and self.training and torch.is_grad_enabled():
            for block in self.stages[i]:
                x = cp.checkpoint(block, x, use_reentrant=False)
            return x
        return self.stages[i](x)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Compute the outputs of the stages in ``out_indices``.

        Args:
            x (Tensor): Images, shape (N, C, H, W).

        Returns:
            tuple[Tensor]: Per index in ``out_indices``, an (N, C_i, H_i, W_i)
            feature map (``'featmap'``) or an (N, C_i) token
            (``'cls_token'``).
        """
        outs = []
        for i in range(self.out_indices[-1] + 1):
            x = self._run_stage(i, x)
            if i not in self.out_indices:
                continue
            norm = self.norms[i]
            if not self.norm_out or isinstance(norm, nn.Identity):
                norm = None
            if self.out_type == 'cls_token':
                x_pool = x.mean([-2, -1])
                outs.append(x_pool if norm is None else norm(x_pool))
            elif norm is None:
                outs.append(x)
            else:
                x_last = norm(x.permute(0, 2, 3, 1))
                outs.append(x_last.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def forward_features(
        self,
        x: Union[Tensor, List[Tensor]],
        masks: Optional[Union[Tensor, List[Optional[Tensor]]]] = None
    ) -> Union[Dict[str, Tensor], List[Dict[str, Tensor]]]:
        """The official ``forward_features``.

        Args:
            x (Tensor | list[Tensor]): Images (N, C, H, W), or a list of
                batches of possibly different sizes.
            masks (Tensor | list, optional): Passed through to ``'masks'``
                (a ConvNeXt does not mask). Defaults to None.

        Returns:
            dict | list[dict]: Per batch: ``x_norm_clstoken`` (N, C), the
            normalised global average; ``x_storage_tokens`` (N, 0, C);
            ``x_norm_patchtokens`` (N, HW, C); ``x_prenorm`` (N, HW, C), the
            patch tokens before the final norm; and ``masks``.
        """
        if isinstance(x, Tensor):
            return self.forward_features_list([x], [masks])[0]
        if masks is None:
            masks = [None] * len(x)
        return self.forward_features_list(x, masks)

    def forward_features_list(
            self, x_list: List[Tensor],
            masks_list: List[Optional[Tensor]]) -> List[Dict[str, Tensor]]:
        """:meth:`forward_features` for each batch of a list.

        Args:
            x_list (list[Tensor]): Batches of images (N, C, H, W).
            masks_list (list): One entry per batch, passed through.

        Returns:
            list[dict]: One :meth:`forward_features` dict per batch.
        """
        output = []
        for x, masks in zip(x_list, masks_list):
            for i in range(NUM_STAGES):
                x = self._run_stage(i, x)
            x_pool = x.mean([-2, -1])
            x = torch.flatten(x, 2).transpose(1, 2)
            x_norm = self.norm(torch.cat([x_pool.unsqueeze(1), x], dim=1))
            n_reg = self.n_storage_tokens
            output.append({
                'x_norm_clstoken': x_norm[:, 0],
                'x_storage_tokens': x_norm[:, 1:n_reg + 1],
                'x_norm_patchtokens': x_norm[:, n_reg + 1:],
                'x_prenorm': x,
                'masks': masks,
            })
        return output

    def _get_intermediate_layers(
            self,
            x: Tensor,
            n: Union[int, Sequence[int]] = 1) -> List[List[Tensor]]:
        h, w = x.shape[-2:]
        take = self._stages_to_take(n)
        output = []
        for i in range(take[-1] + 1):
            x = self._run_stage(i, x)
            if i not in take:
                continue
            x_patches = x
            if self.patch_size is not None:
                x_patches = F.interpolate(
                    x,
                    size=(h // self.patch_size, w // self.patch_size),
                    mode='bilinear',
                    antialias=True)
            output.append([x.mean([-2, -1]), x_patches])
        return output

    @staticmethod
    def _stages_to_take(n: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        if isinstance(n, int):
            if not 1 <= n <= NUM_STAGES:
                raise ValueError(
                    f'n must be in [1, {NUM_STAGES}] (the last n stages) or a '
                    f'sequence of stage indices, got {n}.')
            return tuple(range(NUM_STAGES - n, NUM_STAGES))
        return DINOv3ConvNeXt._parse_indices(n, 'n')

    def get_intermediate_layers(
        self,
        x: Tensor,
        n: Union[int, Sequence[int]] = 1,
        reshape: bool = False,
        return_class_token: bool = False,
        norm: bool = True,
    ) -> Tuple:
        """The official ``get_intermediate_layers``.

        Args:
            x (Tensor): Images, shape (N, C, H, W).
            n (int | Sequence[int]): The last ``n`` stages, or stage indices
                (negatives allowed; returned in increasing order).
                Defaults to 1.
            reshape (bool): Return patch features as (N, C, h, w) instead of
                (N, hw, C). Defaults to False.
            return_class_token (bool): Also return the pooled token of each
                stage. Defaults to False.
            norm (bool): Apply ``norms[i]`` (identity for stages 0-2, the final
                LayerNorm for stage 3) to patches and pooled tokens.
                Defaults to True.

        Returns:
            tuple: Patch features per stage, or ``(patches, class_token)``
            pairs when ``return_class_token`` is True.
        """
        take = self._stages_to_take(n)
        outputs = self._get_intermediate_layers(x, take)
        if norm:
            nchw_shapes = [patches.shape for _, patches in outputs]
            outputs = [
                (self.norms[i](cls_token),
                 self.norms[i](patches.flatten(-2, -1).permute(0, 2, 1)))
                for (cls_token, patches), i in zip(outputs, take)
            ]
            if reshape:
                outputs = [
                    (cls_token,
                     patches.permute(0, 2, 1).reshape(*nchw).contiguous())
                    for (cls_token, patches), nchw in zip(
                        outputs, nchw_shapes)
                ]
        elif not reshape:
            outputs = [(cls_token, patches.flatten(-2, -1).permute(0, 2, 1))
                       for cls_token, patches in outputs]
        class_tokens = [out[0] for out in outputs]
        patch_outputs = [out[1] for out in outputs]
        if return_class_token:
            return tuple(zip(patch_outputs, class_tokens))
        return tuple(patch_outputs)

    def get_layer_depth(self,
                        param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise learning-rate decay.

        See the class docstring for the mapping.

        Args:
            param_name (str): Parameter name, e.g. from ``named_parameters``.
            prefix (str): Prefix of the backbone's parameters in
                ``param_name``, e.g. ``'backbone.'``. Defaults to ``''``.

        Returns:
            tuple[int, int]: The layer id and the number of layer ids.
        """
        max_layer_id = 3 + math.ceil(self.depths[2] / 3)
        if not param_name.startswith(prefix):
            return max_layer_id + 1, max_layer_id + 2
        name = param_name[len(prefix):]
        parts = name.split('.')
        if parts[0] == 'downsample_layers':
            stage_id = int(parts[1])
            if stage_id == 0:
                layer_id = 0
            elif stage_id in (1, 2):
                layer_id = stage_id + 1
            else:
                layer_id = max_layer_id
        elif parts[0] == 'stages':
            stage_id, block_id = int(parts[1]), int(parts[2])
            if stage_id in (0, 1):
                layer_id = stage_id + 1
            elif stage_id == 2:
                layer_id = 3 + block_id // 3
            else:
                layer_id = max_layer_id
        else:
            layer_id = max_layer_id + 1
        return layer_id, max_layer_id + 2

    # ---------------------------------------------------- Hugging Face layout
    @staticmethod
    def state_dict_from_hf(
            state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Translate a Hugging Face ``DINOv3ConvNextModel`` state dict.

        See :func:`~dinov3_mm.models.backbones.hf_convnext.state_dict_from_hf`.
        """
        return hf_convnext.state_dict_from_hf(state_dict)

    @staticmethod
    def state_dict_to_hf(
            state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Translate an official-layout state dict to the HF Hub layout.

        See :func:`~dinov3_mm.models.backbones.hf_convnext.state_dict_to_hf`.
        """
        return hf_convnext.state_dict_to_hf(state_dict)

    def hf_config(self) -> dict:
        """The ``config.json`` of the equivalent ``DINOv3ConvNextModel``."""
        return hf_convnext.hf_config(self)
