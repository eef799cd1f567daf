"""CT display windows: named Hounsfield-unit presets and the mapping to
8-bit grey values."""
from typing import Dict, Optional, Tuple, Union

import numpy as np

#: ``name: (level, width)`` in Hounsfield units.
WINDOW_PRESETS: Dict[str, Tuple[float, float]] = {
    'brain': (40.0, 80.0),
    'subdural': (80.0, 200.0),
    'stroke': (40.0, 40.0),
    'lung': (-600.0, 1500.0),
    'mediastinum': (50.0, 350.0),
    'abdomen': (50.0, 400.0),
    'soft_tissue': (50.0, 400.0),
    'liver': (30.0, 150.0),
    'bone': (400.0, 1800.0),
}


def resolve_window(preset: Optional[str] = None,
                   level: Optional[float] = None,
                   width: Optional[float] = None) -> Tuple[float, float]:
    """``(level, width)`` of a preset name or of explicit values.

    Args:
        preset (str, optional): A key of :data:`WINDOW_PRESETS` (case and
            ``-`` / space insensitive).
        level (float, optional): Window centre in HU (with ``width``).
        width (float, optional): Window width in HU, > 0.

    Raises:
        ValueError: unknown preset, both or neither of a preset and
            level/width given, or a width <= 0.
    """
    if preset is not None and (level is not None or width is not None):
        raise ValueError('CT window: give a preset or level and width, not '
                         'both.')
    if preset is not None:
        key = str(preset).lower().replace('-', '_').replace(' ', '_')
        if key not in WINDOW_PRESETS:
            raise ValueError(f'Unknown CT window preset {preset!r}; choose '
                             f'one of {sorted(WINDOW_PRESETS)} or give '
                             'level and width.')
        return WINDOW_PRESETS[key]
    if level is None or width is None:
        raise ValueError('CT window: give a preset name, or both level and '
                         'width (HU).')
    if float(width) <= 0:
        raise ValueError(f'CT window width={width} must be > 0.')
    return float(level), float(width)


def apply_window(values: np.ndarray, level: float, width: float,
                 out_dtype: Union[str, np.dtype] = 'uint8') -> np.ndarray:
    """Map ``[level - width / 2, level + width / 2]`` linearly onto the grey
    range and clip outside it.

    Args:
        values (np.ndarray): Hounsfield units.
        level (float): Window centre.
        width (float): Window width.
        out_dtype (str): ``'uint8'`` (0..255, rounded) or ``'float32'``
            (0..1). Defaults to ``'uint8'``.
    """
    low = level - width / 2.0
    unit = np.clip((np.asarray(values, np.float32) - np.float32(low)) /
                   np.float32(width), 0.0, 1.0)
    return to_output(unit, out_dtype)


def to_output(unit: np.ndarray, out_dtype: Union[str, np.dtype]
              ) -> np.ndarray:
    """``[0, 1]`` floats as uint8 0..255 (rounded) or float32."""
    dtype = np.dtype(out_dtype)
    if dtype == np.uint8:
        return np.rint(unit * 255.0).astype(np.uint8)
    if dtype == np.float32:
        return unit.astype(np.float32)
    raise ValueError(f"out_dtype={out_dtype!r}; use 'uint8' or 'float32'.")
