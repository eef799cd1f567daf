"""The images of the parity check: where they come from, how they are made.

Parity runs on real images, normalised by the config's test pipeline and the
model's data preprocessor; the served (Triton) preprocessing must give the
same batch.
"""
import copy
from typing import List, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dinov3_mm.utils.progress import track


def list_image_sources(sources: Sequence[str]) -> List[str]:
    """Image paths of every file, folder or list file in ``sources``."""
    from dinov3_mm.apis.inference import list_images
    return [path for source in sources for path in list_images(source)]


def test_set_samples(cfg, limit: int) -> List[dict]:
    """Up to ``limit`` samples (``img_path``, ``gt_label``) of the test set.

    Raises:
        FileNotFoundError: The config's test set cannot be read; the
            message says to pass parity images instead.
    """
    from dinov3_mm.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    try:
        dataset = DATASETS.build(dataset_cfg)
        # samples are in file order: spread the picks over the classes
        step = max(1.0, len(dataset) / limit)
        infos = [dataset.get_data_info(int(i * step))
                 for i in range(min(limit, len(dataset)))]
    except Exception as exc:
        raise FileNotFoundError(
            f'Parity needs real images, but the test set of the config '
            f'(data_root={dataset_cfg.get("data_root")!r}) cannot be read: '
            f'{exc}. Pass --parity-images FILE_OR_FOLDER.') from exc
    if not infos:
        raise FileNotFoundError('The config\'s test set is empty; pass '
                                '--parity-images FILE_OR_FOLDER.')
    return [dict(img_path=i['img_path'], gt_label=i.get('gt_label'))
            for i in infos]


def config_at_size(cfg, size: Sequence[int]):
    """A copy of ``cfg`` whose test pipeline resizes to ``size`` ``(h, w)``."""
    cfg = copy.deepcopy(cfg)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeKeepRatioPad':
            step['size'] = tuple(size)
    return cfg


def preprocess_images(model: nn.Module, images: Sequence[str],
                      cfg=None) -> Tensor:
    """Normalised batch of image files via a test pipeline and the model's
    data preprocessor.

    Args:
        model (nn.Module): Model with a ``data_preprocessor``.
        images (list[str]): Image paths.
        cfg (Config, optional): Config whose test pipeline is used; defaults
            to ``model.cfg`` (set by :func:`~dinov3_mm.apis.init_model`).
    """
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from dinov3_mm.apis.inference import build_test_pipeline
    cfg = cfg if cfg is not None else model.cfg
    init_default_scope(cfg.get('default_scope', 'dinov3_mm'))
    pipeline = build_test_pipeline(cfg)
    batch = pseudo_collate([
        pipeline(dict(img_path=p))
        for p in track(images, 'Parity: test pipeline', unit='img')
    ])
    with torch.no_grad():
        return model.data_preprocessor(batch, False)['inputs']


def served_preprocessing_diff(paths: Sequence[str], spec: dict,
                              reference: torch.Tensor) -> float:
    """Largest difference of the served preprocessing from ``reference``.

    Args:
        paths (Sequence[str]): The image files.
        spec (dict): The serving spec (its preprocessing).
        reference (Tensor): The test pipeline's normalised batch of them.

    Raises:
        ValueError: An image is refused by the served preprocessing (the
            message names it).
    """
    from dinov3_mm.utils.image_ops import preprocess_encoded
    served = []
    for path in track(paths, 'Parity: served preprocessing', unit='img'):
        with open(path, 'rb') as f:
            data = f.read()
        try:
            served.append(preprocess_encoded(data, spec)[0])
        except ValueError as exc:  # e.g. above the served size limits
            raise ValueError(f'Parity image {path}: {exc}') from exc
    return float(np.abs(np.stack(served) - reference.numpy()).max())
