"""DINOv3 backbone checkpoint formats: reading, detecting, loading, writing.

Three layouts are understood:

* ``official``: the flat state dict of Meta's ``.pth`` files
  (``blocks.0.attn.qkv.weight``); our backbones use the same names.
* ``hf``: a Hugging Face model directory (``config.json`` and
  ``model.safetensors``) or its safetensors file (``embeddings.*``,
  ``layer.N.*``).
* ``dinov3_mm``: an mmengine checkpoint (``{'state_dict': ..., 'meta': ...}``)
  whose backbone keys carry a ``backbone.`` prefix.

Files are read with ``torch.load(weights_only=True)`` or safetensors, so
loading a checkpoint never runs code. Key translation to and from the HF
layout is the backbone's own (``state_dict_from_hf``, ``state_dict_to_hf``,
``hf_config``; see ``hf_vit.py`` and ``hf_convnext.py``); this module never
imports a concrete backbone. Converting a file between layouts is a workflow
of :mod:`dinov3_mm.apis.checkpoint_conversion`.
"""
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from dinov3_mm.utils.atomic_write import atomic_write, atomic_write_bytes
from dinov3_mm.utils.checkpoint_io import (CheckpointError, load_weights_only,
                                          preview)

FORMATS = ('official', 'hf', 'dinov3_mm')
HF_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
_WRAPPER_KEYS = ('state_dict', 'model', 'teacher', 'module')


@dataclass
class Checkpoint:
    """A state dict read from disk together with where it came from.

    Attributes:
        path (str): The file or directory read.
        state_dict (dict): Tensors, with wrapper keys removed.
        layout (str): ``'native'`` (our and the official key names) or
            ``'hf'``.
        source (str): ``'official'``, ``'hf'`` or ``'dinov3_mm'``.
        hf_config (dict, optional): ``config.json`` of a HF directory.
    """
    path: str
    state_dict: Dict[str, Tensor]
    layout: str
    source: str
    hf_config: Optional[dict] = None


@dataclass
class LoadReport:
    """What a :func:`load_pretrained` call did.

    Attributes:
        path (str): Checkpoint path.
        source (str): Detected format.
        loaded (int): Number of tensors loaded.
        missing (list[str]): Model keys absent from the checkpoint.
        unexpected (list[str]): Checkpoint keys the model does not have.
    """
    path: str
    source: str
    loaded: int
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f'loaded {self.loaded} tensors from {self.source} checkpoint '
                f'{self.path}')
        if self.missing:
            text += f'; missing keys ({len(self.missing)}): ' + preview(
                self.missing, 8)
        if self.unexpected:
            text += (f'; unexpected keys ({len(self.unexpected)}): ' +
                     preview(self.unexpected, 8))
        return text


def _load_tensor_file(path: str) -> dict:
    """Read a ``.safetensors`` or torch pickle file without running code."""
    try:
        return load_weights_only(path)
    except CheckpointError as exc:
        raise CheckpointError(
            f'{exc} (expected an official .pth state dict, a '
            'dinov3_mm/mmengine checkpoint, a safetensors file or a Hugging '
            'Face model directory)') from exc


def _unwrap(obj, path: str) -> Tuple[Dict[str, Tensor], bool]:
    """Strip wrapper dicts; return the tensors and whether a wrapper was used."""
    wrapped = False
    while isinstance(obj, dict):
        inner = next((obj[k] for k in _WRAPPER_KEYS
                      if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj, wrapped = inner, True
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f'{path} holds no state dict (found {type(obj).__name__}).')
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f'{path} holds no tensors; keys found: '
                              f'{preview(sorted(map(str, obj)), 8)}.')
    return tensors, wrapped


_HF_KEY = re.compile(
    r'^(model\.)?(embeddings\.|layer\.\d+\.|'
    r'stages\.\d+\.(layers|downsample_layers)\.)')


def _is_hf_layout(keys) -> bool:
    """Whether keys follow transformers' DINOv3 ViT or ConvNeXt names."""
    return any(_HF_KEY.match(k) for k in keys)


def read_checkpoint(path: str) -> Checkpoint:
    """Read any supported checkpoint and detect its format.

    Args:
        path (str): An official ``.pth``, a dinov3_mm ``.pth``, a
            ``.safetensors`` file or a HF model directory.

    Raises:
        CheckpointError: Missing path, unreadable file, no tensors.
    """
    if not osp.exists(path):
        raise CheckpointError(f'Checkpoint {path} does not exist.')
    hf_config = None
    if osp.isdir(path):
        config_path = osp.join(path, 'config.json')
        weight_file = next((osp.join(path, f) for f in HF_WEIGHT_FILES
                            if osp.exists(osp.join(path, f))), None)
        if not osp.exists(config_path) or weight_file is None:
            raise CheckpointError(
                f'{path} is a directory but not a Hugging Face model: it '
                f'needs config.json and one of {HF_WEIGHT_FILES}.')
        with open(config_path) as f:
            hf_config = json.load(f)
        path_read = weight_file
    else:
        path_read = path
        sibling = osp.join(osp.dirname(path), 'config.json')
        if path.endswith('.safetensors') and osp.exists(sibling):
            with open(sibling) as f:
                hf_config = json.load(f)
    state_dict, wrapped = _unwrap(_load_tensor_file(path_read), path)
    if _is_hf_layout(state_dict):
        return Checkpoint(path, state_dict, 'hf', 'hf', hf_config)
    source = 'dinov3_mm' if wrapped else 'official'
    return Checkpoint(path, state_dict, 'native', source, hf_config)


#: Backbone prefixes tried, in order, inside whole-model checkpoints.
AUTO_BACKBONE_PREFIXES = ('teacher.backbone.', 'backbone.')


def strip_backbone_prefix(state_dict: Dict[str, Tensor],
                          prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """Keep the keys under ``prefix``, without it.

    Args:
        state_dict (dict[str, Tensor]): A whole-model or backbone state dict.
        prefix (str, optional): Auto (``None``): ``teacher.backbone.`` in a
            self-supervised (DINOv3SSL) checkpoint, whose EMA teacher is the
            model to keep, as in official DINOv3; else ``backbone.`` when
            present (classifiers, segmentors, and DINOv3Distiller, whose
            student is ``backbone`` and frozen teacher ``teacher_backbone``);
            else every key.

    Raises:
        CheckpointError: The backbone holds unmerged LoRA adapters.
    """
    if prefix is None:
        prefix = next((p for p in AUTO_BACKBONE_PREFIXES
                       if any(k.startswith(p) for k in state_dict)), '')
    kept = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    adapters = [k for k in kept if '.lora_' in k or '.base_layer.' in k]
    if adapters:
        raise CheckpointError(
            f'The backbone holds unmerged LoRA adapters (e.g. {adapters[0]}); '
            'fold them into the weights first: python tools/merge_lora.py '
            'CONFIG CHECKPOINT merged.pth.')
    return kept


def backbone_state_dict(model: nn.Module,
                        ckpt: Checkpoint,
                        prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """Translate a read checkpoint to ``model``'s own key names.

    Args:
        model (nn.Module): A DINOv3 backbone.
        ckpt (Checkpoint): From :func:`read_checkpoint`.
        prefix (str, optional): Key prefix of the backbone inside a whole-model
            checkpoint; default ``teacher.backbone.`` (self-supervised
            checkpoints), else ``backbone.`` when present.
    """
    state_dict = strip_backbone_prefix(ckpt.state_dict, prefix)
    if not state_dict:
        raise CheckpointError(
            f'{ckpt.path} has no keys under prefix {prefix!r}; its keys start '
            'with ' +
            preview(sorted({k.split('.')[0] for k in ckpt.state_dict}), 8) +
            '.')
    if ckpt.layout == 'hf':
        state_dict = model.state_dict_from_hf(state_dict)
    return state_dict


def load_pretrained(model: nn.Module,
                    path: str,
                    strict: bool = True,
                    prefix: Optional[str] = None) -> LoadReport:
    """Load a checkpoint of any supported format into a backbone.

    A backbone with an ``adapt_pretrained_state_dict(state_dict)`` method
    gets the translated state dict through it before the shape checks.

    Args:
        model (nn.Module): A DINOv3 backbone.
        path (str): Checkpoint file or HF directory.
        strict (bool): Fail on missing or unexpected keys. Defaults to True.
        prefix (str, optional): See :func:`backbone_state_dict`.

    Returns:
        LoadReport: Counts and the missing/unexpected keys.

    Raises:
        CheckpointError: Unreadable file, shape mismatch (the message names
            the key, both shapes and the model's arch), or, when strict,
            missing or unexpected keys.
    """
    ckpt = read_checkpoint(path)
    state_dict = backbone_state_dict(model, ckpt, prefix)
    # a backbone variant may reshape weights first (e.g. N-band patch embed)
    adapt = getattr(model, 'adapt_pretrained_state_dict', None)
    if adapt is not None:
        state_dict = adapt(state_dict)
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    described = _describe(model)
    if len(unexpected) == len(state_dict):
        raise CheckpointError(
            f'{path} ({ckpt.source} format) does not match {described}: none '
            f'of its keys are known. Found keys like '
            f'{preview(sorted(state_dict), 5)}; expected keys like '
            f'{preview(sorted(own), 5)}.')
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(own[k].shape)}' for k in sorted(set(own) & set(state_dict))
        if state_dict[k].shape != own[k].shape
    ]
    if mismatched:
        raise CheckpointError(
            f'{path} does not fit {described}: {len(mismatched)} shape '
            f'mismatches, e.g. {"; ".join(mismatched[:3])}. The checkpoint '
            f'is probably for another arch; pick the arch it was trained '
            f'with.')
    report = LoadReport(path, ckpt.source,
                        len(set(own) & set(state_dict)), missing, unexpected)
    if strict and (missing or unexpected):
        raise CheckpointError(
            f'Strict load of {path} into {described} failed: {report}. Pass '
            f"strict=False (init_cfg=dict(type='Pretrained', strict=False, "
            f'...)) to load the matching part.')
    model.load_state_dict(
        {k: v for k, v in state_dict.items() if k in own}, strict=False)
    return report


def _describe(model: nn.Module) -> str:
    arch = getattr(model, 'arch', None)
    if arch == 'custom' or arch is None:
        arch = getattr(model, 'arch_settings', arch)
    return f'{type(model).__name__}(arch={arch!r})'


def write_backbone_checkpoint(path: str,
                              fmt: str,
                              state_dict: Dict[str, Tensor],
                              meta: Optional[dict] = None,
                              hf_config: Optional[dict] = None) -> str:
    """Write backbone tensors already in ``fmt``'s key layout, atomically.

    Args:
        path (str): Output ``.pth`` file, or directory for ``'hf'``.
        fmt (str): ``'official'`` (flat state dict), ``'hf'`` (directory with
            ``config.json`` and ``model.safetensors``) or ``'dinov3_mm'``
            (``{'state_dict': {'backbone.*': ...}, 'meta': meta}``).
        state_dict (dict[str, Tensor]): Official key names for
            ``'official'`` and ``'dinov3_mm'``, HF names for ``'hf'``.
        meta (dict, optional): ``meta`` of a ``'dinov3_mm'`` checkpoint.
        hf_config (dict, optional): ``config.json`` content; required for
            ``'hf'``.

    Returns:
        str: The path written.

    Raises:
        ValueError: Unknown format, or ``'hf'`` without ``hf_config``.
    """
    if fmt not in FORMATS:
        raise ValueError(f'Unknown format {fmt!r}; expected one of {FORMATS}.')
    state_dict = {k: v.detach().cpu().contiguous()
                  for k, v in state_dict.items()}
    if fmt == 'official':
        atomic_write(path, lambda f: torch.save(state_dict, f))
    elif fmt == 'dinov3_mm':
        ckpt = dict(
            state_dict={f'backbone.{k}': v for k, v in state_dict.items()},
            meta=meta or {})
        atomic_write(path, lambda f: torch.save(ckpt, f))
    else:
        if hf_config is None:
            raise ValueError('A Hugging Face checkpoint needs its config.json '
                             '(hf_config).')
        from safetensors.torch import save as safetensors_bytes
        os.makedirs(path, exist_ok=True)
        atomic_write_bytes(
            safetensors_bytes(state_dict, metadata={'format': 'pt'}),
            osp.join(path, 'model.safetensors'))
        atomic_write_bytes(
            json.dumps(hf_config, indent=2).encode(),
            osp.join(path, 'config.json'))
    return path


def save_backbone(model: nn.Module, path: str, fmt: str) -> str:
    """Write ``model``'s weights in one of :data:`FORMATS`, atomically.

    Args:
        model (nn.Module): A DINOv3 backbone.
        path (str): Output ``.pth`` file, or directory for ``'hf'``.
        fmt (str): ``'official'``, ``'hf'`` or ``'dinov3_mm'``; see
            :func:`write_backbone_checkpoint`.

    Returns:
        str: The path written.
    """
    if fmt not in FORMATS:
        raise ValueError(f'Unknown format {fmt!r}; expected one of {FORMATS}.')
    state_dict = {k: v.detach().cpu().contiguous()
                  for k, v in model.state_dict().items()}
    if fmt == 'hf':
        return write_backbone_checkpoint(
            path, fmt, model.state_dict_to_hf(state_dict),
            hf_config=model.hf_config())
    meta = dict(backbone=type(model).__name__,
                arch=getattr(model, 'arch_settings', None))
    return write_backbone_checkpoint(path, fmt, state_dict, meta=meta)
