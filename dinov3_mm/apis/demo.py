"""The feature-extraction demo run by ``make demo``."""
import json
import os
import os.path as osp
import time
from typing import Optional, Union

import cv2
import numpy as np
import torch

from dinov3_mm.apis.features import extract_features
from dinov3_mm.apis.pca_features import build_bare_backbone
from dinov3_mm.datasets.synthetic import SHAPES, make_shape_images
from dinov3_mm.visualization.pca import pca_rgb


def run_feature_demo(out_dir: str,
                     backbone: str = 'DINOv3ViT',
                     arch: Union[str, dict] = 'small',
                     checkpoint: Optional[str] = None,
                     num_images: int = 6,
                     img_size: int = 224,
                     normalization: str = 'lvd1689m',
                     bf16: bool = True,
                     seed: int = 0) -> dict:
    """Extract DINOv3 features from generated images and write what they show.

    Writes ``images/*.png`` (inputs), ``pca/*.png`` (patch features coloured
    by their first three principal components, upsampled), ``overview.png``
    (inputs above their PCA maps), ``features.pt`` (class tokens and patch
    maps) and ``summary.json``.

    Args:
        out_dir (str): Output directory.
        backbone (str): Registered backbone type. Defaults to ``'DINOv3ViT'``.
        arch (str | dict): Backbone arch. Defaults to ``'small'``.
        checkpoint (str, optional): Official, HF or dinov3_mm weights; without
            them the backbone is randomly initialised (no download happens).
        num_images (int): Images to generate. Defaults to 6.
        img_size (int): Image side. Defaults to 224.
        normalization (str): Normalisation preset. Defaults to ``'lvd1689m'``.
        bf16 (bool): bf16 autocast. Defaults to True.
        seed (int): Seed of the images and the random init.

    Returns:
        dict: The summary also written to ``summary.json``.
    """
    torch.manual_seed(seed)
    model = build_bare_backbone(backbone, arch, checkpoint)
    images = make_shape_images(num_images, img_size, seed)

    start = time.perf_counter()
    feats = extract_features(model, images, normalization, bf16=bf16)
    seconds = time.perf_counter() - start

    for sub in ('images', 'pca'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    maps = pca_rgb(feats['patch'])
    rows = [[], []]
    for i, (image, pca) in enumerate(zip(images, maps)):
        pca = cv2.resize(pca, (img_size, img_size),
                         interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(osp.join(out_dir, 'images', f'{i:02d}.png'),
                    image[..., ::-1])
        cv2.imwrite(osp.join(out_dir, 'pca', f'{i:02d}.png'), pca[..., ::-1])
        rows[0].append(image)
        rows[1].append(pca)
    overview = np.concatenate([np.concatenate(r, axis=1) for r in rows])
    cv2.imwrite(osp.join(out_dir, 'overview.png'), overview[..., ::-1])
    torch.save(feats, osp.join(out_dir, 'features.pt'))

    cls = torch.nn.functional.normalize(feats['cls'], dim=1)
    summary = dict(
        backbone=backbone,
        arch=arch,
        weights=checkpoint or 'random init (pass --checkpoint for real weights)',
        num_images=num_images,
        shapes=[SHAPES[i % len(SHAPES)] for i in range(num_images)],
        cls_shape=list(feats['cls'].shape),
        patch_shape=list(feats['patch'].shape),
        seconds=round(seconds, 3),
        images_per_second=round(num_images / seconds, 2),
        cls_cosine_similarity=(cls @ cls.T).round(decimals=3).tolist(),
        out_dir=osp.abspath(out_dir),
    )
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary
