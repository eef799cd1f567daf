"""PCA pictures of backbone patch features on your own images.

The three first principal components of the patch features, fitted jointly
over all images (so the same colour means similar features across images),
are shown as RGB next to each image.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.logging import print_log
from torch import nn

from dinov3_mm.utils.cpu_bf16 import autocast_or_fp32
from dinov3_mm.utils.progress import track
from dinov3_mm.utils.quiet_init import init_weights_quietly
from dinov3_mm.visualization.pca import pca_rgb

Normalization = Union[str, Dict[str, Sequence[float]]]


def build_bare_backbone(backbone: Optional[str] = 'DINOv3ViT',
                        arch: Union[str, dict, None] = 'small',
                        weights: Optional[str] = None) -> nn.Module:
    """A DINOv3 backbone from its type and arch, with optional weights.

    The weights (official ``.pth``, HF directory or dinov3_mm checkpoint) are
    loaded strictly by ``init_weights`` through ``init_cfg=dict(type=
    'Pretrained')``, i.e. :func:`~dinov3_mm.models.backbones.weights.
    load_pretrained`. When ``backbone`` or ``arch`` is None it is read from
    the weights (:func:`~dinov3_mm.apis.checkpoint_conversion.
    backbone_cfg_for_checkpoint`); without weights they default to
    ``'DINOv3ViT'`` / ``'small'`` and the backbone keeps its random
    initialisation.
    """
    from dinov3_mm.registry import MODELS
    if weights and (backbone is None or arch is None):
        from dinov3_mm.models.backbones.weights import read_checkpoint

        from .checkpoint_conversion import backbone_cfg_for_checkpoint
        found = backbone_cfg_for_checkpoint(
            read_checkpoint(weights), backbone, arch)
        backbone, arch = found['type'], found['arch']
    cfg = dict(type=backbone or 'DINOv3ViT',
               arch=arch if arch is not None else 'small')
    if weights:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=weights)
    model = MODELS.build(cfg)
    init_weights_quietly(model)
    return model


def backbone_from_config(config, checkpoint: Optional[str] = None,
                         device: str = 'cpu',
                         cfg_options: Optional[dict] = None
                         ) -> Tuple[nn.Module, Dict[str, List[float]]]:
    """``model.backbone`` of a config (classifier, segmentor, ...) and the
    normalisation of its data preprocessor.

    The whole model is built by :func:`~dinov3_mm.apis.inference.init_model`
    (so any checkpoint it loads works); without a checkpoint the backbone is
    initialised as the config says.

    Returns:
        tuple: The backbone (eval mode) and ``dict(mean, std)`` on the 0-255
        scale.
    """
    from dinov3_mm.apis.inference import init_model
    model = init_model(config, checkpoint, device=device,
                       cfg_options=cfg_options)
    backbone = getattr(model, 'backbone', None)
    if backbone is None:
        raise ValueError(f'The model of {config} ({type(model).__name__}) '
                         'has no `backbone`.')
    dp = getattr(model, 'data_preprocessor', None)
    if getattr(dp, '_enable_normalize', False):
        norm = dict(mean=dp.mean.view(-1).tolist(),
                    std=dp.std.view(-1).tolist())
    else:
        norm = dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    return backbone.eval(), norm


def _mean_std(normalization: Normalization) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(normalization, str):
        from dinov3_mm.models.normalization import get_normalization
        normalization = get_normalization(normalization)
    mean = np.asarray(normalization['mean'], np.float32).reshape(1, 1, 3)
    std = np.asarray(normalization['std'], np.float32).reshape(1, 1, 3)
    return mean, std


def input_size(height: int, width: int, img_size: int,
               multiple: int) -> Tuple[int, int]:
    """``(h, w)`` with the longer side ``img_size`` (ratio kept), both
    rounded to a positive multiple of ``multiple``."""
    scale = img_size / max(height, width)

    def snap(side: int) -> int:
        return max(multiple, int(round(side * scale / multiple)) * multiple)

    return snap(height), snap(width)


def feature_stride(backbone: nn.Module) -> int:
    """Pixels per feature-map cell of the last block / stage."""
    patch = getattr(backbone, 'patch_size', None)
    return int(patch) if isinstance(patch, int) and patch > 0 else 32


@torch.inference_mode()
def patch_features(backbone: nn.Module, image: np.ndarray,
                   normalization: Normalization = 'lvd1689m',
                   bf16: bool = False) -> torch.Tensor:
    """``(C, h, w)`` normalised patch features of the last block / stage.

    Args:
        backbone (nn.Module): A DINOv3 ViT or ConvNeXt.
        image (np.ndarray): RGB uint8 ``(H, W, 3)``, sides multiples of the
            patch size for the ViT.
        normalization (str | dict): Preset name or ``dict(mean, std)`` on
            the 0-255 scale.
        bf16 (bool): bf16 autocast. Defaults to False.
    """
    mean, std = _mean_std(normalization)
    x = (image.astype(np.float32) - mean) / std
    device = next(backbone.parameters()).device
    x = torch.from_numpy(x).permute(2, 0, 1)[None].to(device)
    backbone.eval()
    with autocast_or_fp32(device.type, torch.bfloat16 if bf16 else None,
                          'bf16 features'):
        (patch, _), = backbone.get_intermediate_layers(
            x, n=1, reshape=True, return_class_token=True)
    return patch[0].float().cpu()


def joint_pca_rgb(features: Sequence[torch.Tensor]) -> List[np.ndarray]:
    """:func:`pca_rgb` fitted jointly over feature maps of any sizes.

    Args:
        features (sequence[Tensor]): ``(C, h_i, w_i)`` maps.

    Returns:
        list[np.ndarray]: ``(h_i, w_i, 3)`` uint8 maps.
    """
    sizes = [tuple(f.shape[-2:]) for f in features]
    flat = torch.cat([f.flatten(1) for f in features], dim=1)
    rgb = pca_rgb(flat[None, :, None, :])[0, 0]  # (N, 3)
    out, start = [], 0
    for h, w in sizes:
        out.append(rgb[start:start + h * w].reshape(h, w, 3))
        start += h * w
    return out


def side_by_side(image: np.ndarray, pca: np.ndarray) -> np.ndarray:
    """The image and its PCA map (nearest-upsampled to the image size)."""
    pca = cv2.resize(pca, (image.shape[1], image.shape[0]),
                     interpolation=cv2.INTER_NEAREST)
    return np.concatenate([image, pca], axis=1)


def run_pca_features(source: Union[str, Sequence[str]],
                     out_dir: str,
                     config=None,
                     checkpoint: Optional[str] = None,
                     backbone: Optional[str] = None,
                     arch: Union[str, dict, None] = None,
                     weights: Optional[str] = None,
                     img_size: int = 448,
                     normalization: Optional[Normalization] = None,
                     bf16: bool = True,
                     device: str = 'cpu',
                     cfg_options: Optional[dict] = None) -> List[str]:
    """Write ``image | PCA of its patch features`` PNGs for images.

    The backbone is ``model.backbone`` of ``config`` (with ``checkpoint``),
    or a bare ``backbone``/``arch`` with ``weights`` (see
    :func:`build_bare_backbone`). Each image is resized so its longer side
    is ``img_size`` (aspect ratio kept, sides multiples of the feature
    stride); the PCA is fitted over the patches of all images.

    Args:
        source (str | sequence[str]): An image, a folder, a text list (see
            :func:`~dinov3_mm.apis.inference.list_images`) or paths.
        out_dir (str): Output folder: ``<relative path>.png`` per image, of
            size ``(h, 2 * w)`` for a model input of ``(h, w)``.
        config (str | Config, optional): Config whose ``model.backbone`` is
            used.
        checkpoint (str, optional): Checkpoint of ``config``.
        backbone (str, optional): Bare backbone type (no config).
        arch (str | dict, optional): Bare backbone arch.
        weights (str, optional): Bare backbone weights.
        img_size (int): Longer side of the model input. Defaults to 448.
        normalization (str | dict, optional): Defaults to the config's data
            preprocessor, else ``'lvd1689m'``.
        bf16 (bool): bf16 autocast. Defaults to True.
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides of ``config``.

    Returns:
        list[str]: The written files.
    """
    from dinov3_mm.apis.inference import list_images
    from dinov3_mm.apis.seg_inference import relative_png_names
    from dinov3_mm.datasets.transforms.loading import read_image
    if config is not None and (arch is not None or weights or backbone):
        raise ValueError('Give a config (and checkpoint), or a backbone arch '
                         '(and weights), not both.')
    if isinstance(source, str):
        paths = list_images(source)
        root = source if osp.isdir(source) else None
    else:
        paths, root = list(source), None
    if config is not None:
        model, config_norm = backbone_from_config(config, checkpoint, device,
                                                  cfg_options)
        normalization = normalization or config_norm
    else:
        if checkpoint:
            raise ValueError('checkpoint needs a config; use weights for a '
                             'bare backbone.')
        if not weights:
            print_log('pca_features: no weights given; the backbone is '
                      'randomly initialised.', logger='current')
        model = build_bare_backbone(backbone, arch, weights).to(device)
        normalization = normalization or 'lvd1689m'
    stride = feature_stride(model)
    images, features = [], []
    for path in track(paths, 'PCA: patch features', unit='img'):
        image = read_image(path)
        h, w = input_size(*image.shape[:2], img_size, stride)
        flag = cv2.INTER_AREA if h < image.shape[0] else cv2.INTER_CUBIC
        image = cv2.resize(image, (w, h), interpolation=flag)
        images.append(image)
        features.append(patch_features(model, image, normalization, bf16))
    written = []
    for image, pca, name in zip(images, joint_pca_rgb(features),
                                relative_png_names(paths, root)):
        out = osp.join(out_dir, name)
        os.makedirs(osp.dirname(out), exist_ok=True)
        cv2.imwrite(out, side_by_side(image, pca)[..., ::-1])
        written.append(out)
    return written
