"""Convert DINOv3 backbone checkpoints between the official, HF and dinov3_mm formats.

Reading, format detection and writing live in
:mod:`dinov3_mm.models.backbones.weights`; this module works out which
backbone a checkpoint was made for, builds it through the ``MODELS`` registry,
loads the weights strictly and writes them in the target format
(``tools/convert_checkpoint.py``). It also merges the shards of a sharded
(FSDP) training checkpoint into one file.
"""
from typing import Optional, Tuple, Union

import torch

from dinov3_mm.models.backbones.base import DINOv3BackboneBase
from dinov3_mm.models.backbones.weights import (Checkpoint, load_pretrained,
                                                read_checkpoint,
                                                save_backbone,
                                                strip_backbone_prefix)
from dinov3_mm.models.lora import LORA_MARKER
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.atomic_write import atomic_write
from dinov3_mm.utils.checkpoint_io import (CheckpointError, load_weights_only,
                                           read_shards)
from dinov3_mm.utils.sharded_checkpoint import SHARD_INDEX_KEY, is_shard_index

#: Backbone type of each HF ``config.json`` ``model_type``.
HF_MODEL_TYPES = {
    'dinov3_vit': 'DINOv3ViT',
    'dinov3_convnext': 'DINOv3ConvNeXt'
}
#: Backbone type told by the first component of its (official or HF) keys.
KEY_PREFIXES = {
    'DINOv3ViT': ('blocks.', 'layer.', 'model.layer.'),
    'DINOv3ConvNeXt': ('downsample_layers.', 'stages.', 'model.stages.'),
}
BACKBONES = tuple(sorted(KEY_PREFIXES))


def backbone_class(name: str) -> type:
    """The registered DINOv3 backbone class called ``name``.

    Args:
        name (str): A ``MODELS`` type name, e.g. ``'DINOv3ViT'``.

    Raises:
        CheckpointError: ``name`` is not a registered DINOv3 backbone.
    """
    cls = MODELS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, DINOv3BackboneBase)):
        raise CheckpointError(f'Unknown backbone {name!r}; expected one '
                              f'of {list(BACKBONES)}.')
    return cls


def _backbone_from_keys(ckpt: Checkpoint) -> str:
    keys = strip_backbone_prefix(ckpt.state_dict)
    for name, prefixes in KEY_PREFIXES.items():
        if any(k.startswith(prefixes) for k in keys):
            return name
    raise CheckpointError(
        f'Cannot tell which backbone {ckpt.path} belongs to; pass the '
        f'backbone type ({list(BACKBONES)}) and arch explicitly.')


def check_no_lora(ckpt: Checkpoint) -> None:
    """Refuse checkpoints that still hold LoRA adapters.

    Raises:
        CheckpointError: ``lora_A`` / ``lora_B`` / ``base_layer`` keys are
            present; the message says to merge them first.
    """
    lora = [k for k in ckpt.state_dict
            if LORA_MARKER in k or '.base_layer.' in k]
    if lora:
        raise CheckpointError(
            f'{ckpt.path} holds unmerged LoRA adapters (e.g. {lora[0]}); '
            'fold them into the weights first with `python '
            'tools/merge_lora.py CONFIG CKPT OUT`, then convert OUT.')


def backbone_cfg_for_checkpoint(ckpt: Checkpoint,
                                backbone: Optional[str] = None,
                                arch: Union[str, dict, None] = None) -> dict:
    """The backbone config (``type`` and ``arch``) a checkpoint was made for.

    Uses, in order: the given ``backbone``/``arch``, a HF ``config.json``, the
    tensor names (backbone type) and shapes (arch).

    Args:
        ckpt (Checkpoint): From
            :func:`~dinov3_mm.models.backbones.weights.read_checkpoint`.
        backbone (str, optional): A registered DINOv3 backbone type, e.g.
            ``'DINOv3ViT'`` or ``'DINOv3ConvNeXt'``.
        arch (str | dict, optional): Arch name or dict.

    Returns:
        dict: ``dict(type=backbone, arch=arch)``.

    Raises:
        CheckpointError: The backbone type or arch cannot be determined.
    """
    config = ckpt.hf_config or {}
    if backbone is None:
        backbone = HF_MODEL_TYPES.get(config.get('model_type'))
    if backbone is None:
        backbone = _backbone_from_keys(ckpt)
    cls = backbone_class(backbone)
    if arch is None:
        if config:
            arch = cls.arch_from_hf_config(config)
        elif ckpt.layout == 'native':
            arch = cls.arch_from_state_dict(
                strip_backbone_prefix(ckpt.state_dict))
        else:
            raise CheckpointError(
                f'{ckpt.path} is a Hugging Face state dict without its '
                f'config.json; pass the arch explicitly.')
    return dict(type=backbone, arch=arch)


def convert_checkpoint(src: str,
                       dst: str,
                       to: str,
                       backbone: Optional[str] = None,
                       arch: Union[str, dict, None] = None
                       ) -> Tuple[str, dict]:
    """Convert a backbone checkpoint between the official, HF and dinov3_mm formats.

    The weights pass through a real backbone loaded strictly, so a converted
    file is known to load.

    Args:
        src (str): Any readable checkpoint (see
            :func:`~dinov3_mm.models.backbones.weights.read_checkpoint`).
        dst (str): Output file (``official``/``dinov3_mm``) or directory
            (``hf``).
        to (str): Target format, one of
            :data:`~dinov3_mm.models.backbones.weights.FORMATS`.
        backbone (str, optional): Backbone type when it cannot be inferred.
        arch (str | dict, optional): Arch when it cannot be inferred.

    Returns:
        tuple[str, dict]: The path written and the backbone config used.

    Raises:
        CheckpointError: Unreadable source, unknown backbone, or weights that
            do not fit the backbone.
    """
    ckpt = read_checkpoint(src)
    check_no_lora(ckpt)
    cfg = backbone_cfg_for_checkpoint(ckpt, backbone, arch)
    model = backbone_class(cfg['type'])(arch=cfg['arch'])
    load_pretrained(model, src, strict=True)
    return save_backbone(model, dst, to), cfg


def merge_sharded_checkpoint(src: str, dst: str) -> Tuple[str, int]:
    """Write a sharded (FSDP) training checkpoint as one ordinary file.

    The result holds the full model, optimizer and scheduler state: it
    loads anywhere a checkpoint of ``tools/train.py`` does (``load_from``,
    ``tools/test.py``, resuming without sharding, backbone ``init_cfg``).

    Args:
        src (str): The index file of the sharded checkpoint (e.g.
            ``work_dirs/x/epoch_3.pth``, next to its ``.shard<r>-of-<N>``
            files).
        dst (str): The file to write (atomically).

    Returns:
        tuple[str, int]: ``dst`` and the number of shards merged.

    Raises:
        CheckpointError: ``src`` is not a sharded checkpoint, or a shard is
            missing or does not match the index.
    """
    index = load_weights_only(src, merge=False)
    if not is_shard_index(index):
        raise CheckpointError(
            f'{src} is not a sharded checkpoint (it has no '
            f'{SHARD_INDEX_KEY!r} record); it is already one file.')
    merged = read_shards(src, index)
    atomic_write(dst, lambda f: torch.save(merged, f))
    return dst, index[SHARD_INDEX_KEY]['world_size']
