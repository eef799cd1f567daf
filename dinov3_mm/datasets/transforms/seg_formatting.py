"""Old import path of :class:`PackSegInputs`, now in :mod:`.formatting`.

Kept only while the satellite plugin (``dinov3_mm_satellite.transforms.
formatting``) imports from here; delete it once that plugin imports from
:mod:`dinov3_mm.datasets.transforms`.
"""
from .formatting import PackSegInputs

__all__ = ['PackSegInputs']
