"""Fold the LoRA adapters of a trained checkpoint into its weights.

The model-level operations (:func:`~dinov3_mm.models.lora.apply_lora`,
:func:`~dinov3_mm.models.lora.merge_lora`) live in
:mod:`dinov3_mm.models.lora`; this module applies them to a config and a
checkpoint file (``tools/merge_lora.py``).
"""
import copy
import os.path as osp
from typing import Union

import torch
from mmengine.config import Config

from dinov3_mm.models.lora import LORA_MARKER, merge_lora
from dinov3_mm.registry import MODELS
from dinov3_mm.utils.atomic_write import atomic_write
from dinov3_mm.utils.checkpoint_io import load_weights_only
from dinov3_mm.utils.state_dict_loading import load_model_weights


class NoLoraError(ValueError):
    """The config has no LoRA adapters, so there is nothing to merge."""


def check_has_lora(config: Union[str, Config]) -> Config:
    """The config (loaded), after checking that it sets ``model.lora``.

    Raises:
        NoLoraError: It does not: there are no adapters to merge.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if not cfg.model.get('lora'):
        name = config if isinstance(config, str) else getattr(
            cfg, 'filename', None) or 'the config'
        raise NoLoraError(
            f'config {name} has no LoRA adapters (model.lora is not set); '
            'nothing to merge: use the checkpoint as it is.')
    return cfg


def merge_lora_checkpoint(config: Union[str, Config], checkpoint: str,
                          out: str) -> str:
    """Write a checkpoint with merged adapters for the config without LoRA.

    Args:
        config (str | Config): Training config whose ``model`` has ``lora``.
        checkpoint (str): Checkpoint trained with that config.
        out (str): Output path; written atomically (temp file + rename).

    Returns:
        str: ``out``. The file holds ``state_dict`` (loadable strictly into
        ``model`` built with ``lora`` removed) and ``meta``.

    Raises:
        NoLoraError: The config has no ``model.lora``.
        CheckpointError: The checkpoint is missing or does not fit
            (:class:`~dinov3_mm.utils.checkpoint_io.CheckpointError`).
    """
    cfg = check_has_lora(config)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['backbone'].pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    state = load_weights_only(checkpoint)
    load_model_weights(model, state, checkpoint_name=checkpoint,
                       config_name=getattr(cfg, 'filename', None),
                       hint='Pass the config the checkpoint was trained '
                       'with.')
    merged = merge_lora(model).state_dict()
    leftover = [k for k in merged if LORA_MARKER in k or '.base_layer.' in k]
    if leftover:
        raise RuntimeError(f'Merging left adapter keys such as {leftover[:3]}.')
    meta = dict(state.get('meta') or {}) if isinstance(state, dict) else {}
    meta.update(lora_merged_from=osp.abspath(checkpoint),
                lora=dict(cfg.model['lora']))
    return atomic_write(
        out, lambda f: torch.save(dict(meta=meta, state_dict=merged), f))
