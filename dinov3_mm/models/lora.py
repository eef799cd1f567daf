"""LoRA adapters (via ``peft``) on the linear layers of the DINOv3 backbones.

:func:`apply_lora` wraps the chosen :class:`~dinov3_mm.models.layers.Linear`
layers of a backbone with ``peft`` LoRA layers and freezes every other
backbone parameter; :func:`merge_lora` folds the adapters back into the
weights and restores the plain modules, so the merged state dict loads into
the same model built without LoRA.
:func:`dinov3_mm.apis.lora_merge.merge_lora_checkpoint` does that for a
trained checkpoint (``tools/merge_lora.py``).

Wrapped layers keep their weights under ``<name>.base_layer.*`` (peft's
layout); a load pre-hook also accepts the plain ``<name>.weight`` keys, so
checkpoints without adapters load into a LoRA model (missing adapter weights
keep their initial values).

Blocks that fuse GELU into their first layer go through
:func:`~dinov3_mm.models.layers.linear`, which calls a wrapped layer itself,
so its adapter runs.
"""
from typing import Sequence

from mmengine.logging import print_log
from torch import nn

DEFAULT_TARGETS = ('qkv', 'proj', 'fc1', 'fc2', 'w1', 'w2', 'w3', 'pwconv1',
                   'pwconv2')
LORA_MARKER = 'lora_'


def _tuner_layer_class():
    from peft.tuners.tuners_utils import BaseTunerLayer
    return BaseTunerLayer


def _backbone_of(model: nn.Module) -> nn.Module:
    return getattr(model, 'backbone', model)


def apply_lora(model: nn.Module,
               r: int = 8,
               alpha: float = 16,
               dropout: float = 0.0,
               target_modules: Sequence[str] = DEFAULT_TARGETS) -> nn.Module:
    """Add LoRA adapters to a backbone (or a model's ``backbone``) in place.

    Only ``nn.Linear`` layers (our ``Linear``) whose attribute name is in
    ``target_modules`` are wrapped, so ``patch_embed.proj`` (a conv) is not.
    Afterwards the adapters are the only trainable backbone parameters; the
    rest of a model (e.g. its head) is untouched. Adapters start with
    ``lora_B = 0``, so outputs are unchanged.

    Args:
        model (nn.Module): A backbone, or a model with a ``backbone``.
        r (int): Adapter rank. Defaults to 8.
        alpha (float): LoRA scaling numerator (scale ``alpha / r``).
            Defaults to 16.
        dropout (float): Dropout on the adapter input. Defaults to 0.
        target_modules (Sequence[str]): Attribute names of the linear layers
            to adapt. Defaults to the ViT attention and FFN layers and the
            ConvNeXt pointwise layers.

    Returns:
        nn.Module: ``model`` itself.

    Raises:
        ValueError: No layer matches ``target_modules``.
    """
    from peft import LoraConfig, inject_adapter_in_model
    backbone = _backbone_of(model)
    wanted = set(target_modules)
    names = [name for name, module in backbone.named_modules()
             if isinstance(module, nn.Linear)
             and name.rsplit('.', 1)[-1] in wanted]
    if not names:
        raise ValueError(f'No linear layer of {type(backbone).__name__} is '
                         f'named like target_modules={list(target_modules)}.')
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=names, bias='none')
    inject_adapter_in_model(config, backbone)
    tuner = _tuner_layer_class()
    for module in backbone.modules():
        if isinstance(module, tuner):
            module._register_load_state_dict_pre_hook(
                _accept_plain_keys, with_module=True)
    for name, param in backbone.named_parameters():
        param.requires_grad = LORA_MARKER in name
    trainable = sum(p.numel() for n, p in backbone.named_parameters()
                    if p.requires_grad)
    print_log(f'LoRA r={r} alpha={alpha} on {len(names)} layers of '
              f'{type(backbone).__name__}: {trainable} trainable backbone '
              'parameters.', logger='current')
    return model


def _accept_plain_keys(module: nn.Module, state_dict: dict, prefix: str,
                       *args) -> None:
    """Load pre-hook: route ``<layer>.weight`` to ``<layer>.base_layer.weight``.

    Adapter weights absent from ``state_dict`` are filled with the current
    ones, so a checkpoint without adapters loads strictly.
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    if not keys or any(k[len(prefix):].startswith('base_layer.') for k in keys):
        return
    for key in keys:
        rest = key[len(prefix):]
        if not rest.startswith(LORA_MARKER):
            state_dict[f'{prefix}base_layer.{rest}'] = state_dict.pop(key)
    for name, tensor in module.state_dict().items():
        if name.startswith(LORA_MARKER):
            state_dict.setdefault(prefix + name, tensor)


def has_lora(model: nn.Module) -> bool:
    """Whether ``model`` contains LoRA-wrapped layers."""
    tuner = _tuner_layer_class()
    return any(isinstance(m, tuner) for m in model.modules())


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and unwrap the layers in place.

    The result has exactly the modules (and state-dict keys) of the model
    built without LoRA. Parameters keep their ``requires_grad`` flags.

    Args:
        model (nn.Module): A model or backbone with LoRA layers.

    Returns:
        nn.Module: ``model`` itself.
    """
    tuner = _tuner_layer_class()
    for name, module in list(model.named_modules()):
        if not isinstance(module, tuner):
            continue
        module.merge()
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
    if hasattr(model, 'lora_cfg'):
        model.lora_cfg = None
    return model
