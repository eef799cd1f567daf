"""Input normalisation constants of the released DINOv3 weights."""
from typing import Dict, Optional, Sequence, Tuple

# RGB mean and std on a 0-1 scale.
NORMALIZATION: Dict[str, Dict[str, Tuple[float, float, float]]] = {
    # web images (LVD-1689M weights): the ImageNet statistics
    'lvd1689m': dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    # satellite imagery (SAT-493M weights)
    'sat493m': dict(mean=(0.430, 0.411, 0.296), std=(0.213, 0.156, 0.143)),
}
NORMALIZATION['imagenet'] = NORMALIZATION['lvd1689m']


def get_normalization(name: str, scale: float = 255.0) -> Dict[str, list]:
    """Mean and std of a named preset, multiplied by ``scale``.

    Args:
        name (str): ``'lvd1689m'`` (alias ``'imagenet'``) or ``'sat493m'``.
        scale (float): 255 for uint8 pixels (mmengine data preprocessors), 1
            for images already in ``[0, 1]``. Defaults to 255.

    Returns:
        dict: ``{'mean': [r, g, b], 'std': [r, g, b]}``.
    """
    key = name.lower().replace('-', '').replace('_', '')
    if key not in NORMALIZATION:
        raise ValueError(f'Unknown normalization {name!r}; expected one of '
                         f'{sorted(NORMALIZATION)}.')
    preset = NORMALIZATION[key]
    return {k: [round(v * scale, 6) for v in preset[k]] for k in ('mean', 'std')}


def resolve_mean_std(
    normalization: Optional[str],
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None
) -> Tuple[Optional[Sequence[float]], Optional[Sequence[float]]]:
    """The ``(mean, std)`` a data preprocessor uses, on the 0-255 scale.

    Explicit ``mean`` and ``std`` win; otherwise the named preset (see
    :func:`get_normalization`); ``(None, None)`` when neither is given.

    Raises:
        ValueError: Only one of ``mean`` and ``std`` is given.
    """
    if (mean is None) != (std is None):
        raise ValueError('Give both mean and std, or neither (and a '
                         'normalization name).')
    if mean is None and normalization is not None:
        preset = get_normalization(normalization)
        mean, std = preset['mean'], preset['std']
    return mean, std
