"""Common behaviour of the DINOv3 backbones: archs, pretrained loading, freezing."""
import copy
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule


class DINOv3BackboneBase(BaseModule):
    """Base class of the DINOv3 backbones.

    The module layout of every subclass is the official one, so an official
    ``.pth`` state dict loads without renaming. Subclasses provide the
    translation to and from the Hugging Face layout and their own random
    initialisation; this class turns ``init_cfg=dict(type='Pretrained',
    checkpoint=...)`` into a strict, format-aware load that a later
    ``init_weights()`` (for instance the Runner's) never overwrites.

    Archs follow one idiom: a class attribute :attr:`arch_zoo` maps names to
    settings dicts, ``arch`` is one of those names or a custom dict, and
    :meth:`resolve_arch` turns either into ``arch_settings`` (the name, or
    ``'custom'``, is kept as ``arch``).

    Subclasses set:
        ``arch_zoo``: named arch settings.
        ``arch_required_keys``: keys a custom arch dict must have.

    Subclasses implement:
        ``_complete_arch(arch)``: validate a custom arch dict and fill in
            defaults.
        ``_init_random_weights()``: the official random initialisation.
        ``state_dict_from_hf(state_dict)``: HF keys to ours (it may use the
            instance for entries HF does not store, e.g. RoPE periods).
        ``state_dict_to_hf(state_dict)``: our keys to HF.
        ``hf_config()``: the ``config.json`` dict of the HF model.
        ``_freeze_stages()``: apply ``frozen_stages``.
    """

    arch_zoo: Dict[str, dict] = {}
    arch_required_keys: Sequence[str] = ()

    @classmethod
    def resolve_arch(cls, arch: Union[str, dict]) -> dict:
        """Turn an arch name or dict into a complete settings dict.

        Args:
            arch (str | dict): A name of :attr:`arch_zoo` (any case) or a dict
                with at least :attr:`arch_required_keys`.

        Returns:
            dict: A fresh settings dict (safe to modify).

        Raises:
            ValueError: Unknown name, or a dict the subclass rejects.
            TypeError: ``arch`` is neither a str nor a dict.
        """
        if isinstance(arch, str):
            key = arch.lower()
            if key not in cls.arch_zoo:
                raise ValueError(
                    f'Unknown {cls.__name__} arch {arch!r}; expected one of '
                    f'{sorted(cls.arch_zoo)} or a dict with keys '
                    f'{list(cls.arch_required_keys)}.')
            return copy.deepcopy(cls.arch_zoo[key])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or dict, got {type(arch)}.')
        missing = [k for k in cls.arch_required_keys if k not in arch]
        if missing:
            raise ValueError(
                f'Custom {cls.__name__} arch is missing keys {missing}.')
        return cls._complete_arch(copy.deepcopy(dict(arch)))

    @classmethod
    def _complete_arch(cls, arch: dict) -> dict:
        raise NotImplementedError

    def _init_arch(self, arch: Union[str, dict]) -> dict:
        """Set ``arch_settings`` and ``arch`` (a zoo name or ``'custom'``)."""
        self.arch_settings = self.resolve_arch(arch)
        self.arch = arch if isinstance(arch, str) else 'custom'
        return self.arch_settings

    def init_weights(self) -> None:
        """Load the pretrained checkpoint named by ``init_cfg``, once.

        Without ``init_cfg`` (or with ``checkpoint=None``, the empty slot the
        recipes leave for ``--cfg-options model.backbone.init_cfg.checkpoint=``)
        nothing is loaded: the constructor already applied
        the official random initialisation, and weights loaded since (for
        instance with ``load_state_dict``) must survive the Runner's call.
        """
        if getattr(self, '_is_init', False):
            return
        cfg = self.init_cfg
        if (isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
                and cfg.get('checkpoint') is None):
            # a config slot for weights that the user left empty
            print_log(f'{type(self).__name__}: no pretrained checkpoint '
                      f'given; random initialisation.', logger='current')
        elif isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from .weights import load_pretrained
            report = load_pretrained(
                self,
                cfg['checkpoint'],
                strict=cfg.get('strict', True),
                prefix=cfg.get('prefix'))
            print_log(
                f'{type(self).__name__}: {report}', logger='current')
        elif cfg is not None:
            super().init_weights()
        # init_cfg=None: the constructor already applied the official
        # initialisation; weights loaded since then are left alone.
        self._is_init = True
        self._freeze_stages()

    def _init_random_weights(self) -> None:
        raise NotImplementedError

    def _freeze_stages(self) -> None:
        raise NotImplementedError

    def state_dict_from_hf(
            self, state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Translate a Hugging Face state dict to this backbone's keys."""
        raise NotImplementedError

    def state_dict_to_hf(
            self, state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Translate this backbone's state dict to the Hugging Face layout."""
        raise NotImplementedError

    def hf_config(self) -> dict:
        """The Hugging Face ``config.json`` content describing this backbone."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> 'DINOv3BackboneBase':
        """Set training mode, keeping frozen stages in eval mode."""
        super().train(mode)
        if mode:
            self._freeze_stages()
        return self

    @staticmethod
    def _freeze(module: Optional[torch.nn.Module]) -> None:
        """Put ``module`` in eval mode and stop its gradients."""
        if module is None:
            return
        module.eval()
        for param in module.parameters():
            param.requires_grad = False
