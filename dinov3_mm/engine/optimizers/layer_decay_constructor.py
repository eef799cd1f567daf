"""Optimizer parameter groups for fine-tuning: backbone vs head lr, layer-wise
lr decay and no weight decay on norms, biases, tokens and LayerScale."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from dinov3_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS

DEFAULT_NO_DECAY_NAMES = ('cls_token', 'storage_tokens', 'register_tokens',
                          'mask_token', 'pos_embed', 'gamma')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Parameter groups with layer-wise learning-rate decay (LLRD).

    A backbone parameter with layer id ``i`` out of ``n`` (from
    ``model.backbone.get_layer_depth(name, prefix='backbone.')``; for the ViT
    the class/storage/mask tokens and the patch embedding are 0 and block
    ``k`` is ``k + 1``) gets ``lr = base_lr * backbone_lr_mult *
    layer_decay_rate ** (n - i - 1)``; every other parameter (head, neck)
    gets ``base_lr``. Weight decay is 0 for 1-D parameters (norms, biases,
    LayerScale), for names ending in ``.bias`` and for names containing a
    component listed in ``no_decay_names``. Parameters with
    ``requires_grad=False`` (frozen stages, LoRA base weights) are left out.
    Each group carries ``lr_scale``, ``layer_id`` and ``param_names``; a
    table of the groups is logged.

    Args:
        optim_wrapper_cfg (dict): ``optim_wrapper`` config with ``optimizer``.
        paramwise_cfg (dict, optional): ``layer_decay_rate`` (float, default
            1.0: no decay), ``backbone_lr_mult`` (float, default 1.0),
            ``patch_embed_lr_mult`` (float, default 1.0; an extra factor on
            ``patch_embed`` parameters, 0.2 in official DINOv3 training),
            ``backbone`` (dotted attribute path of the backbone, default
            ``'backbone'``; ``'student.backbone'`` for
            :class:`~dinov3_mm.models.ssl.DINOv3SSL`) and ``no_decay_names``
            (Sequence[str], default cls/storage/register/mask tokens,
            ``pos_embed``, ``gamma``).

    Example::

        optim_wrapper = dict(
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
            constructor='LayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.75, backbone_lr_mult=0.1))
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        known = ('layer_decay_rate', 'backbone_lr_mult', 'patch_embed_lr_mult',
                 'backbone', 'no_decay_names')
        unknown = set(paramwise_cfg) - set(known)
        if unknown:
            raise ValueError(
                f'LayerDecayOptimWrapperConstructor does not support '
                f'paramwise_cfg keys {sorted(unknown)}; use '
                f'{", ".join(known)}.')
        paramwise_cfg.setdefault('layer_decay_rate', 1.0)
        self.layer_decay_rate = float(paramwise_cfg['layer_decay_rate'])
        self.backbone_lr_mult = float(paramwise_cfg.get('backbone_lr_mult', 1.0))
        self.patch_embed_lr_mult = float(
            paramwise_cfg.get('patch_embed_lr_mult', 1.0))
        self.backbone_path = str(paramwise_cfg.get('backbone', 'backbone'))
        self.no_decay_names = tuple(
            paramwise_cfg.get('no_decay_names', DEFAULT_NO_DECAY_NAMES))
        if not 0 < self.layer_decay_rate <= 1:
            raise ValueError(f'layer_decay_rate must be in (0, 1], got '
                             f'{self.layer_decay_rate}.')
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        if self.base_lr is None:
            raise ValueError('optim_wrapper.optimizer needs an lr for '
                             'layer-wise lr decay.')

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[Union[int, float]] = None) -> None:
        """Append one group per (layer id, decay / no decay) to ``params``."""
        base_wd = self.base_wd or 0.0
        groups: Dict[Tuple, dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, scale = self._lr_scale(module, name)
            no_decay = self._no_decay(name, param)
            key = (layer_id, scale, no_decay)
            if key not in groups:
                groups[key] = dict(
                    params=[], param_names=[], lr=self.base_lr * scale,
                    lr_scale=scale, layer_id=layer_id,
                    weight_decay=0.0 if no_decay else base_wd)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        ordered = sorted(groups.items(),
                         key=lambda kv: (kv[0][0] is None, kv[0][0] or 0,
                                         kv[0][1], kv[0][2]))
        params.extend(group for _, group in ordered)
        self._log(params)

    def _lr_scale(self, model: nn.Module,
                  name: str) -> Tuple[Optional[int], float]:
        prefix = self.backbone_path + '.'
        backbone = model
        for attr in self.backbone_path.split('.'):
            backbone = getattr(backbone, attr, None)
        if backbone is None or not name.startswith(prefix):
            return None, 1.0
        scale = self.backbone_lr_mult
        if 'patch_embed' in name.split('.'):
            scale *= self.patch_embed_lr_mult
        if not hasattr(backbone, 'get_layer_depth'):
            return 0, scale
        layer_id, num_layers = backbone.get_layer_depth(name, prefix=prefix)
        return layer_id, scale * self.layer_decay_rate**(
            num_layers - layer_id - 1)

    def _no_decay(self, name: str, param: nn.Parameter) -> bool:
        parts = set(name.split('.'))
        return (param.ndim <= 1 or name.endswith('.bias')
                or any(n in parts for n in self.no_decay_names))

    @staticmethod
    def _log(params: Sequence[dict]) -> None:
        lines = ['Parameter groups (layer-wise lr decay):',
                 f'{"layer":>6} {"lr":>11} {"lr_scale":>9} {"wd":>7} '
                 f'{"#params":>9}  first parameter']
        for group in params:
            layer = 'head' if group['layer_id'] is None else group['layer_id']
            count = sum(p.numel() for p in group['params'])
            lines.append(
                f'{layer!s:>6} {group["lr"]:11.4g} {group["lr_scale"]:9.4g} '
                f'{group["weight_decay"]:7.3g} {count:9d}  '
                f'{group["param_names"][0]}')
        print_log('\n'.join(lines), logger='current')
