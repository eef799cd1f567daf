"""Building a :class:`DINOv3PatchCore` from a config or a backbone spec."""
import json
from typing import Optional, Sequence, Union

import torch
from mmengine.config import Config, ConfigDict

from dinov3_mm.registry import MODELS
from .detector import DINOv3PatchCore

# Settings of the anomaly config when only a backbone is named.
RUN_DEFAULTS = dict(img_size=224, batch_size=8, categories=None,
                    data_root=None, work_dir='work_dirs/anomaly_detect')


def parse_arch(arch: str) -> Union[str, dict]:
    """An arch name (``'small'``) or a JSON dict (``'{"embed_dims": 64,
    "num_layers": 2, "num_heads": 2}'``)."""
    text = arch.strip()
    if text.startswith('{'):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f'--arch {arch!r} is not valid JSON: {exc}') \
                from exc
    return text


def config_from_backbone(arch: Union[str, dict] = 'small',
                         out_indices: Sequence[int] = (-1, ),
                         **detector_kwargs) -> Config:
    """An anomaly config (``model`` + :data:`RUN_DEFAULTS`) for a DINOv3 ViT.

    Args:
        arch (str | dict): ``DINOv3ViT`` arch. Defaults to ``'small'``.
        out_indices (Sequence[int]): Blocks whose patch maps are used.
            Defaults to ``(-1, )``.
        **detector_kwargs: Other :class:`DINOv3PatchCore` arguments.
    """
    model = dict(
        type='DINOv3PatchCore',
        backbone=dict(type='DINOv3ViT', arch=arch, out_type='featmap',
                      out_indices=tuple(out_indices), init_cfg=None),
        **detector_kwargs)
    return Config(dict(default_scope='dinov3_mm', model=model,
                       **RUN_DEFAULTS))


def build_detector(model_cfg: Union[dict, ConfigDict],
                   checkpoint: Optional[str] = None,
                   device: str = 'cpu') -> DINOv3PatchCore:
    """Build the detector, load its backbone weights and move it to ``device``.

    Args:
        model_cfg (dict): ``dict(type='DINOv3PatchCore', backbone=...)``.
        checkpoint (str, optional): Backbone weights (official ``.pth``,
            Hugging Face folder or dinov3_mm checkpoint); overrides the
            backbone's ``init_cfg``. Defaults to None.
        device (str): Torch device. Defaults to ``'cpu'``.
    """
    cfg = ConfigDict(model_cfg).copy()
    if checkpoint:
        cfg.backbone = dict(cfg.backbone,
                            init_cfg=dict(type='Pretrained',
                                          checkpoint=checkpoint))
    detector = MODELS.build(cfg)
    if not isinstance(detector, DINOv3PatchCore):
        raise TypeError(f'The anomaly config builds {type(detector).__name__};'
                        " expected model=dict(type='DINOv3PatchCore', ...).")
    detector.init_weights()
    return detector.to(torch.device(device))
