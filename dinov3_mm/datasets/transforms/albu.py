"""Bridge to albumentations, with domain presets."""
import copy
import difflib
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

# albumentations otherwise asks PyPI for a newer version at import time.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

_BORDER_CONSTANT = 0  # cv2.BORDER_CONSTANT

ALBU_PRESETS: Dict[str, List[dict]] = {
    # Conservative: small geometric jitter and mild intensity changes only;
    # no flips (laterality matters in many modalities), no colour jitter.
    'medical': [
        dict(type='Affine', rotate=(-10, 10),
             translate_percent=(-0.05, 0.05), scale=(0.95, 1.05),
             border_mode=_BORDER_CONSTANT, p=0.5),
        dict(type='RandomBrightnessContrast', brightness_limit=0.1,
             contrast_limit=0.1, p=0.5),
    ],
    # Overhead imagery has no canonical orientation.
    'satellite': [
        dict(type='HorizontalFlip', p=0.5),
        dict(type='VerticalFlip', p=0.5),
        dict(type='RandomRotate90', p=0.5),
        dict(type='ColorJitter', brightness=0.2, contrast=0.2,
             saturation=0.2, hue=0.05, p=0.5),
    ],
    # Parts under varying lighting and focus, at small pose changes.
    'industrial': [
        dict(type='HorizontalFlip', p=0.5),
        dict(type='VerticalFlip', p=0.5),
        dict(type='Affine', rotate=(-15, 15), border_mode=_BORDER_CONSTANT,
             p=0.5),
        dict(type='RandomBrightnessContrast', brightness_limit=0.2,
             contrast_limit=0.2, p=0.5),
        dict(type='OneOf', p=0.3, transforms=[
            dict(type='GaussianBlur', blur_limit=(3, 5), p=1.0),
            dict(type='GaussNoise', std_range=(0.02, 0.06), p=1.0),
        ]),
    ],
}


def build_albu(cfg: Any) -> Any:
    """Build an albumentations transform from ``dict(type='Name', ...)``.

    Containers (``Compose``, ``OneOf``, ``SomeOf``, ``Sequential``) take
    their children as a ``transforms`` list of such dicts. Ready-made
    albumentations objects are passed through.

    Raises:
        KeyError: ``type`` is not an albumentations transform; the message
            lists the closest names.
    """
    import albumentations as A
    if not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    name = cfg.pop('type', None)
    cls = getattr(A, str(name), None) if name else None
    if not isinstance(cls, type):
        known = [n for n in dir(A) if isinstance(getattr(A, n), type)]
        close = difflib.get_close_matches(str(name), known, n=5)
        raise KeyError(f'Albumentations: {name!r} is not an albumentations '
                       f'{A.__version__} transform; closest: {close}.')
    if 'transforms' in cfg:
        cfg['transforms'] = [build_albu(t) for t in cfg['transforms']]
    return cls(**cfg)


@TRANSFORMS.register_module()
class Albumentations(BaseTransform):
    """Apply an albumentations pipeline to ``img`` (and ``gt_seg_map``).

    The image must be RGB uint8 (as :class:`LoadImage` gives it). Without
    ``seed`` the albumentations generator is seeded from ``numpy.random`` on
    first use, i.e. in each dataloader worker after mmengine has seeded it,
    so ``randomness=dict(seed=...)`` makes runs reproducible.

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape
    - gt_seg_map (optional, as the albumentations ``mask``)

    Args:
        transforms (sequence[dict], optional): Albumentations transforms as
            ``dict(type='HorizontalFlip', p=0.5)``; nested ``OneOf`` /
            ``Compose`` take a ``transforms`` list. Applied after the
            preset's. Defaults to None.
        preset (str, optional): ``'medical'`` (small affine jitter, mild
            brightness/contrast; no flips or colour jitter), ``'satellite'``
            (flips, 90° rotations, colour jitter) or ``'industrial'``
            (flips, small rotation, brightness/contrast, blur or noise).
            See :data:`ALBU_PRESETS`. Defaults to None.
        seed (int, optional): Seed of the albumentations generator.
            Defaults to None (from ``numpy.random`` on first use).
    """

    def __init__(self,
                 transforms: Optional[Sequence[dict]] = None,
                 preset: Optional[str] = None,
                 seed: Optional[int] = None) -> None:
        if preset is not None and preset not in ALBU_PRESETS:
            raise ValueError(f'Albumentations: preset={preset!r}; expected '
                             f'one of {sorted(ALBU_PRESETS)}.')
        cfgs = copy.deepcopy(ALBU_PRESETS[preset]) if preset else []
        cfgs += list(transforms or [])
        if not cfgs:
            raise ValueError('Albumentations: give `transforms` or a '
                             '`preset`.')
        import albumentations as A
        self.preset = preset
        self.transform_cfgs = cfgs
        self.seed = seed
        self.aug = A.Compose([build_albu(c) for c in cfgs], seed=seed)
        self._seeded = seed is not None

    def transform(self, results: dict) -> dict:
        """Augment ``img`` and, when present, ``gt_seg_map``."""
        if not self._seeded:
            self.aug.set_random_seed(int(np.random.randint(0, 2**31 - 1)))
            self._seeded = True
        data = dict(image=results['img'])
        has_mask = results.get('gt_seg_map') is not None
        if has_mask:
            data['mask'] = results['gt_seg_map']
        out = self.aug(**data)
        results['img'] = out['image']
        results['img_shape'] = out['image'].shape[:2]
        if has_mask:
            results['gt_seg_map'] = out['mask']
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(preset={self.preset!r}, '
                f'transforms={self.transform_cfgs}, seed={self.seed})')
